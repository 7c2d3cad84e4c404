"""Sequential delivery: one client sends events one after another, as Asaas does when it replays a queue.

    python bench/sequential.py [--seconds 10] [--rounds 3]

One keep-alive connection, the next request sent when the previous answer arrived, so the events/s a
provider's sequential mode can reach is 1 / latency. The production receiver (gunicorn, gevent workers,
verify + store + enqueue, every answer after the commit) and the bare Flask app are driven in turn,
round after round in one run, and so is the floor any durable receiver pays per event on this machine:
a plain psycopg2 loop that commits one 3 KB row (autocommit INSERT: WAL flush) and LPUSHes its id.
Prints p50/p99 per request and events/s for all three.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from bench.common import (  # noqa: E402
    REDIS_URL,
    LoadResult,
    SignedRequests,
    ThrowawayDatabase,
    receiver_env,
    run_python,
    software,
    stop,
)
from bench.receiver import running  # noqa: E402


def durable_floor(url: str, body: str, seconds: float) -> LoadResult:
    """One INSERT + commit of the body and one LPUSH per event, one after another: no HTTP, no Python app."""
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    broker = redis.Redis.from_url(REDIS_URL)
    latencies = []
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS floor_probe (id text PRIMARY KEY, payload jsonb NOT NULL)")
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            key = secrets.token_hex(12)
            cursor.execute("INSERT INTO floor_probe VALUES (%s, %s)", (key, body))
            broker.lpush("pedro-bench-floor", key)
            latencies.append(time.perf_counter() - started)
    broker.delete("pedro-bench-floor")
    connection.close()
    latencies.sort()
    return LoadResult(len(latencies), seconds, 0, latencies[len(latencies) // 2] * 1000,
                      latencies[int(len(latencies) * 0.99)] * 1000)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.server = "production"

    queue = f"pedro-bench-{secrets.token_hex(4)}"
    with ThrowawayDatabase() as database:
        env = receiver_env(database.url, queue)
        bare, bare_url = running("bench.bare_app:app", env, args)
        receiver, receiver_url = running("ingest.http.server.wsgi:app", env, args)
        rounds, floors = [], []
        try:
            run_python(bare_url, "/webhooks/clerk", SignedRequests(500), seconds=1, connections=1)
            run_python(receiver_url, "/webhooks/clerk", SignedRequests(2000), seconds=1, connections=1)
            for _ in range(args.rounds):
                fresh = SignedRequests(int(args.seconds * 1500))  # more than one client can send: all new events
                bare_round = run_python(bare_url, "/webhooks/clerk", fresh, seconds=args.seconds, connections=1)
                fresh = SignedRequests(int(args.seconds * 1500))
                receiver_round = run_python(receiver_url, "/webhooks/clerk", fresh, seconds=args.seconds, connections=1)
                rounds.append((bare_round, receiver_round))
                floors.append(durable_floor(database.url, fresh.body, args.seconds / 2))
        finally:
            stop(bare)
            stop(receiver)
        stored = database.scalar('SELECT count(*) FROM "WebhookEvent"')
        redis.Redis.from_url(REDIS_URL).delete(queue)

    for number, (bare_round, receiver_round) in enumerate(rounds, 1):
        print(f"round {number}  bare      {bare_round.line()}")
        print(f"round {number}  receiver  {receiver_round.line()}")
        print(f"round {number}  floor     {floors[number - 1].line()}  (INSERT + commit + LPUSH, no HTTP)")
    p50 = statistics.median(r.p50_ms for _, r in rounds)
    p99 = statistics.median(r.p99_ms for _, r in rounds)
    eps = statistics.median(r.rps for _, r in rounds)
    bare_p50 = statistics.median(b.p50_ms for b, _ in rounds)
    errors = sum(b.errors + r.errors for b, r in rounds)
    print(
        f"SUMMARY receiver_p50_ms={p50:.2f} receiver_p99_ms={p99:.2f} receiver_eps={eps:.0f} "
        f"floor_p50_ms={statistics.median(f.p50_ms for f in floors):.2f} "
        f"floor_p99_ms={statistics.median(f.p99_ms for f in floors):.2f} "
        f"bare_p50_ms={bare_p50:.2f} bare_eps={statistics.median(b.rps for b, _ in rounds):.0f} "
        f"errors={errors} stored={stored} rounds={args.rounds}x{args.seconds:g}s "
        f"load={','.join(f'{v:.2f}' for v in os.getloadavg())} {software()}"
    )


if __name__ == "__main__":
    main()
