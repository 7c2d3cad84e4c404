"""Receiver throughput and latency against a bare Flask app, same gunicorn configuration, same run.

    python bench/receiver.py [--seconds 10] [--connections 32] [--driver wrk|python]

Prints, for the bare app and for pedro-ingest's receiver (verify + store + enqueue): requests/s,
p50/p99 latency, errors, the ratio receiver/bare, and p99 at half of the receiver's own max rate.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from bench.common import (  # noqa: E402
    REDIS_URL,
    SECRET,
    LoadResult,
    SignedRequests,
    ThrowawayDatabase,
    free_port,
    have_wrk,
    run_open_loop,
    run_python,
    run_wrk,
    start_gunicorn,
    stop,
)
from ingest.serving import gunicorn_workers  # noqa: E402


def drive(args: argparse.Namespace, url: str, requests: SignedRequests, delay_ms: float = 0.0) -> LoadResult:
    if args.driver == "wrk":
        return run_wrk(url, "/webhooks/clerk", requests, seconds=args.seconds, connections=args.connections,
                       threads=args.load_threads, rate_per_connection_delay_ms=delay_ms)  # fmt: skip
    return run_python(url, "/webhooks/clerk", requests, seconds=args.seconds, connections=args.connections,
                      delay_ms=delay_ms)  # fmt: skip


def measure(args: argparse.Namespace, app: str, env: dict[str, str], requests: SignedRequests) -> tuple:
    port = free_port()
    workers, threads = gunicorn_workers(args.workers)
    server = start_gunicorn(app, port, env, workers, args.threads or threads)
    url = f"http://127.0.0.1:{port}"
    try:
        warm = argparse.Namespace(**{**vars(args), "seconds": max(1, args.seconds // 5)})
        drive(warm, url, requests)
        peak = drive(args, url, requests)
        half = None
        if args.half_rate:
            # Open loop at exactly half of the measured peak: latency from each request's scheduled time.
            half = run_open_loop(url, "/webhooks/clerk", requests, [("half", args.seconds, peak.rps / 2)])["half"]
        return peak, half
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (both apps)")
    parser.add_argument("--threads", type=int, default=0, help="override serve's threads per worker (both apps)")
    parser.add_argument("--load-threads", type=int, default=1, help="wrk processes")
    parser.add_argument("--driver", choices=["wrk", "python"], default="wrk" if have_wrk() else "python")
    parser.add_argument("--no-half-rate", dest="half_rate", action="store_false")
    args = parser.parse_args()

    queue = f"pedro-bench-{secrets.token_hex(4)}"
    with ThrowawayDatabase() as database:
        env = {**os.environ, "DATABASE_URL": database.url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue,
               "CLERK_WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(Path.cwd())}  # fmt: skip
        requests = SignedRequests(max(2000, 8000 * args.seconds))
        bare, _ = measure(argparse.Namespace(**{**vars(args), "half_rate": False}), "bench.bare_app:app", env, requests)
        database.truncate()
        started = time.monotonic()
        receiver, half = measure(args, "ingest.wsgi:app", env, requests)
        stored = database.scalar('SELECT count(*) FROM "WebhookEvent"')
        queued = redis.Redis.from_url(REDIS_URL).llen(queue)
        redis.Redis.from_url(REDIS_URL).delete(queue)
        elapsed = time.monotonic() - started

    body_kb = len(requests.body) / 1024
    workers, threads = gunicorn_workers(args.workers)
    threads = args.threads or threads
    print(f"bare      {bare.line()}")
    print(f"receiver  {receiver.line()}  (stored {stored:,} rows, queued {queued:,} tasks in {elapsed:.0f}s)")
    if half:
        print(f"receiver at half rate ({half.rps:,.0f} req/s): p99 {half.p99_ms:.2f} ms, errors {half.errors}")
    ratio = receiver.rps / bare.rps if bare.rps else 0.0
    print(
        f"SUMMARY receiver/bare={ratio:.2f} bare_rps={bare.rps:.0f} receiver_rps={receiver.rps:.0f} "
        f"receiver_p50_ms={receiver.p50_ms:.2f} receiver_p99_ms={receiver.p99_ms:.2f} "
        f"half_rate_p99_ms={half.p99_ms if half else float('nan'):.2f} errors={receiver.errors + bare.errors} "
        f"body_kb={body_kb:.1f} driver={args.driver} connections={args.connections} gunicorn=w{workers}x{threads} "
        f"python={platform.python_version()} cores={os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
