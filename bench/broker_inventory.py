"""Benchmark: what the sweeper's broker check costs with N tasks queued (default 5,000 and 50,000).

    .venv/bin/python bench/broker_inventory.py [--broker-url redis://127.0.0.1:6379/0]

Pushes N `process_event` messages on a throw-away queue, then times, in the same run: reading the raw list
(the baseline), `BrokerInventory.held()` (lists + the `unacked` hash, messages decoded) and `missing()`
(two reads, as a sweep does). Prints figures, then a `SUMMARY` line for the largest size.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from ingest.broker.inventory import BrokerInventory  # noqa: E402
from ingest.broker.task_messages import task_message  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--sizes", default="5000,50000")
    args = parser.parse_args()
    queue = f"pedro-bench-inventory-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(args.broker_url)
    try:
        for n in (int(size) for size in args.sizes.split(",")):
            client.delete(queue)
            pipe = client.pipeline(transaction=False)
            for i in range(n):
                pipe.lpush(queue, task_message("pedro_ingest.process_event", [f"row{i:08d}"], queue))
            pipe.execute()
            started, start = time.perf_counter(), 0
            while client.lrange(queue, start, start + 999):
                start += 1000
            raw = time.perf_counter() - started
            inventory = BrokerInventory(args.broker_url, queue)
            started = time.perf_counter()
            inventory.held()
            held = time.perf_counter() - started
            started = time.perf_counter()
            absent = inventory.missing([f"row{i:08d}" for i in range(n)] + ["lost"])
            missing = time.perf_counter() - started
            inventory.close()
            print(f"{n:,} queued: raw LRANGE {raw:.3f}s; held() {held:.3f}s ({held / raw:.1f}x raw); "
                  f"missing() (two reads) {missing:.3f}s ({missing / raw:.1f}x raw)")  # fmt: skip
        print(f"SUMMARY queued={n} held_x_raw={held / raw:.1f} missing_x_raw={missing / raw:.1f} "
              f"missing_found={','.join(sorted(absent))}")  # fmt: skip
    finally:
        client.delete(queue)
        client.close()


if __name__ == "__main__":
    main()
