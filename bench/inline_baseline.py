"""Ack latency under a 10x burst: pedro-ingest's receiver against the inline pattern, same run.

    python bench/inline_baseline.py [--rate 60] [--steady 5] [--burst 5]

Both apps run under the same gunicorn configuration and receive the same open-loop schedule: a steady
rate, then ten times that rate, then the steady rate again. Latency is measured from each request's
scheduled time, so a server that falls behind shows its backlog.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from bench.common import (  # noqa: E402
    REDIS_URL,
    SignedRequests,
    ThrowawayDatabase,
    describe_server,
    free_port,
    receiver_env,
    run_open_loop,
    software,
    start_gunicorn,
    stop,
)


def measure(app: str, env: dict[str, str], requests: SignedRequests, phases, workers: int) -> dict:
    port = free_port()
    server = start_gunicorn(app, port, env, workers)
    try:
        return run_open_loop(f"http://127.0.0.1:{port}", "/webhooks/clerk", requests, phases)
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=60.0, help="steady requests/s (the burst is 10x)")
    parser.add_argument("--steady", type=float, default=5.0, help="seconds of steady load before and after")
    parser.add_argument("--burst", type=float, default=5.0, help="seconds of burst")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    phases = [("warmup", 2.0, args.rate), ("steady", args.steady, args.rate), ("burst", args.burst, args.rate * 10),
              ("after", args.steady, args.rate)]  # fmt: skip
    total = int(sum(seconds * rate for _, seconds, rate in phases)) + 10
    queue = f"pedro-bench-{secrets.token_hex(4)}"
    with ThrowawayDatabase() as database:
        env = receiver_env(database.url, queue)
        inline = measure("bench.inline_app:app", env, SignedRequests(total), phases, args.workers)
        receiver = measure("ingest.http.server.wsgi:app", env, SignedRequests(total), phases, args.workers)
        redis.Redis.from_url(REDIS_URL).delete(queue)

    for name, results in (("inline", inline), ("receiver", receiver)):
        for phase, result in results.items():
            if phase == "warmup":
                continue
            print(f"{name:9s} {phase:7s} {result.requests:6d} req  p50 {result.p50_ms:8.2f} ms  "
                  f"p99 {result.p99_ms:8.2f} ms  errors {result.errors}")  # fmt: skip
    growth = {n: r["burst"].p99_ms / r["steady"].p99_ms if r["steady"].p99_ms else 0 for n, r in
              (("inline", inline), ("receiver", receiver))}  # fmt: skip
    print(
        f"SUMMARY receiver_burst_p99/steady_p99={growth['receiver']:.2f} inline_burst_p99/steady_p99="
        f"{growth['inline']:.2f} receiver_steady_p99_ms={receiver['steady'].p99_ms:.2f} "
        f"receiver_burst_p99_ms={receiver['burst'].p99_ms:.2f} inline_steady_p99_ms={inline['steady'].p99_ms:.2f} "
        f"inline_burst_p99_ms={inline['burst'].p99_ms:.2f} rate={args.rate:g}/s burst={args.rate * 10:g}/s "
        f"errors={sum(r.errors for res in (inline, receiver) for r in res.values())} "
        f"gunicorn={describe_server('production', args.workers)} {software()}"
    )


if __name__ == "__main__":
    main()
