"""A backlog burst end to end: signed events offered as fast as N connections allow, workers running.

    python bench/burst.py [--events 20000] [--connections 10] [--sequential] [--rates 60,120,180 --window 60]

The receiver (gunicorn, gevent workers) and `pedro-ingest worker -c 2` run together on this machine, as
in production. Each event is a distinct Clerk user (`user.created`, 3 KB, its own signature), so every
one does real work in the worker. Prints: the time until every event is `processed`, the peak backlog
(rows not yet final), p99 acknowledgement, errors, and how busy the workers were while a backlog existed
(the sum of their `process_event` durations over processes x that time). `--sequential` repeats it from
one connection. `--rates` then offers fixed open-loop rates for `--window` seconds each and reports the
backlog's growth per second at each: the sustainable rate is the highest whose backlog grows <= 1/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402
import redis  # noqa: E402
from svix.webhooks import Webhook  # noqa: E402

from bench.common import (  # noqa: E402
    REDIS_URL,
    SECRET,
    LoadResult,
    SignedRequests,
    ThrowawayDatabase,
    clerk_user_payload,
    receiver_env,
    run_open_loop,
    software,
    stop,
)
from bench.receiver import running  # noqa: E402

PENDING = """SELECT count(*) FROM "WebhookEvent" WHERE status NOT IN ('processed', 'ignored', 'failed', 'dead')"""


class DistinctEvents(SignedRequests):
    """Like `SignedRequests`, but every delivery is its own user (a new body and signature each)."""

    def __init__(self, count: int) -> None:  # not super().__init__: that signs one body for all
        wh, now = Webhook(SECRET), dt.datetime.now(dt.UTC)
        prefix, stamp = f"msg_{secrets.token_hex(6)}_", str(int(now.timestamp()))
        self.bodies = [json.dumps(clerk_user_payload(f"user_{secrets.token_hex(10)}")) for _ in range(count)]
        self.body = self.bodies[0]
        self.rows = [(f"{prefix}{i}", stamp, wh.sign(f"{prefix}{i}", now, body)) for i, body in enumerate(self.bodies)]

    def body_of(self, index: int) -> str:
        return self.bodies[index]


def send_all(url: str, events: DistinctEvents, connections: int) -> tuple[list[float], int]:
    """Every event exactly once, spread over `connections` keep-alive clients; (latencies, errors)."""
    import http.client
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        local = []
        for index in range(offset, len(events.rows), connections):
            msg_id, stamp, signature = events.rows[index]
            headers = {"Content-Type": "application/json", "svix-id": msg_id, "svix-timestamp": stamp,
                       "svix-signature": signature}  # fmt: skip
            started = time.perf_counter()
            try:
                conn.request("POST", "/webhooks/clerk", body=events.bodies[index], headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok, conn = False, http.client.HTTPConnection(host, port, timeout=30)
            local.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies), errors[0]


_watch = threading.local()


def pending(url: str) -> int:
    """Rows not yet final, on this thread's own connection (PostgreSQL's slots are shared on this machine)."""
    for attempt in range(20):
        try:
            if getattr(_watch, "connection", None) is None or _watch.connection.closed:
                _watch.connection = psycopg2.connect(url)
                _watch.connection.autocommit = True
            with _watch.connection.cursor() as cursor:
                cursor.execute(PENDING)
                return cursor.fetchone()[0]
        except psycopg2.OperationalError:  # "too many clients" while other sessions peak: wait, try again
            _watch.connection = None
            time.sleep(0.5 * (attempt + 1))
    raise RuntimeError("PostgreSQL refused the backlog query 20 times")


def burst(url: str, receiver_url: str, connections: int, count: int, metrics_dir: Path) -> dict[str, float]:
    """Offer `count` events over `connections`; watch the backlog until it is empty."""
    events = DistinctEvents(count)
    before_us, before_n = duration_totals(metrics_dir)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            samples.append((time.monotonic(), pending(url)))
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.monotonic()
    watcher.start()
    latencies, errors = send_all(receiver_url, events, connections)
    acked = time.monotonic() - started
    while pending(url) > 0:
        time.sleep(0.2)
    drained = time.monotonic() - started
    done.set()
    watcher.join()
    after_us, after_n = duration_totals(metrics_dir)
    busy_s = (after_us - before_us) / 1e6
    return {
        "acked_s": acked,
        "drained_s": drained,
        "peak_backlog": max((n for _, n in samples), default=0),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
        "processed": after_n - before_n,
        "busy": busy_s / (2 * drained),  # two worker processes, over the time a backlog existed
    }


def duration_totals(directory: Path) -> tuple[float, float]:
    """(sum of process_event µs, count) the workers recorded so far."""
    from prometheus_client import CollectorRegistry, multiprocess

    from ingest.observability.metrics import EVENT_DURATION

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    total = registry.get_sample_value(f"{EVENT_DURATION._name}_sum", {"provider": "clerk"}) or 0.0
    count = registry.get_sample_value(f"{EVENT_DURATION._name}_count", {"provider": "clerk"}) or 0.0
    return total * 1e6, count


def growth(url: str, receiver_url: str, rate: float, window: float) -> tuple[float, int]:
    """Offer `rate` events/s for `window` seconds (open loop); the backlog's growth per second between a
    third of the window and its end (the first third fills the pipeline), and the errors."""
    events = DistinctEvents(int(rate * window) + 10)
    outcome: dict[str, LoadResult] = {}
    sender = threading.Thread(
        target=lambda: outcome.update(
            run_open_loop(receiver_url, "/webhooks/clerk", events, [("rate", window, rate)], connections=32)
        )
    )
    started = time.monotonic()
    sender.start()
    time.sleep(window / 3)
    first, first_at = pending(url), time.monotonic()
    time.sleep(max(0.0, started + window - time.monotonic()))
    last, last_at = pending(url), time.monotonic()
    sender.join()
    return (last - first) / (last_at - first_at), outcome["rate"].errors


def raw_consumer(url: str, part: int, parts: int) -> None:
    """The minimal-effect loop as a consumer: poll this share of the enqueued rows, apply them
    (`bench.raw_effects`), forever (the parent terminates it)."""
    from bench.raw_effects import drain

    connection = psycopg2.connect(url)
    connection.autocommit = True
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT id FROM "WebhookEvent" WHERE status = 'enqueued' AND abs(hashtext(id)) %% %s = %s
                   ORDER BY "receivedAt" LIMIT 200""",
                (parts, part),
            )
            ids = [row[0] for row in cursor.fetchall()]
        if ids:
            drain(url, ids)
        else:
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--sequential", action="store_true", help="also offer the events from one connection")
    parser.add_argument("--rates", default="", help="offered rates (events/s) for the sustainable-rate search")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per offered rate")
    parser.add_argument("--prefetch", type=int, default=0, help="worker --prefetch-multiplier (0: the configured one)")
    args = parser.parse_args()
    args.workers, args.server = 2, "production"

    queue = f"pedro-burst-{secrets.token_hex(4)}"
    metrics = Path(tempfile.mkdtemp(prefix="pedro-burst-metrics-"))
    results: dict[str, dict[str, float]] = {}
    rates: list[tuple[float, float, int]] = []
    raw_rates: list[tuple[float, float, int]] = []
    with ThrowawayDatabase("pedro_burst") as database:
        env = receiver_env(database.url, queue)
        receiver, receiver_url = running("ingest.http.server.wsgi:app", env, args)
        worker_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "WORKER_METRICS_PORT": "0"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "worker", "-c", "2", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"burst-{queue}@%h",
             *(["--prefetch-multiplier", str(args.prefetch)] if args.prefetch else [])],
            env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            send_all(receiver_url, DistinctEvents(200), 4)  # warm both
            while pending(database.url):
                time.sleep(0.2)
            results[f"{args.connections}conn"] = burst(
                database.url, receiver_url, args.connections, args.events, metrics / "worker"
            )
            if args.sequential:
                results["1conn"] = burst(database.url, receiver_url, 1, args.events, metrics / "worker")
            for rate in [float(r) for r in args.rates.split(",") if r]:
                per_second, errors = growth(database.url, receiver_url, rate, args.window)
                rates.append((rate, per_second, errors))
                while pending(database.url):
                    time.sleep(0.5)
            stop(worker)
            if args.rates:  # the same intake, drained by the minimal-effect loop in as many processes
                import multiprocessing

                context = multiprocessing.get_context("fork")
                loops = [context.Process(target=raw_consumer, args=(database.url, k, 2), daemon=True) for k in (0, 1)]
                for loop in loops:
                    loop.start()
                for rate in [float(r) for r in args.rates.split(",") if r]:
                    per_second, errors = growth(database.url, receiver_url, rate, args.window)
                    raw_rates.append((rate, per_second, errors))
                    while pending(database.url):
                        time.sleep(0.5)
                for loop in loops:
                    loop.terminate()
        finally:
            stop(receiver)
            stop(worker)
        redis.Redis.from_url(REDIS_URL).delete(queue, f"{queue}-periodic")

    for name, r in results.items():
        print(f"{name}: {args.events:,} events acked in {r['acked_s']:.1f}s, all processed after "
              f"{r['drained_s']:.1f}s; peak backlog {r['peak_backlog']:,.0f}; ack p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms; errors {r['errors']:.0f}; workers busy {r['busy']:.0%}")  # fmt: skip
    for label, found in (("pedro-ingest worker -c 2", rates), ("minimal-effect loop x2", raw_rates)):
        for rate, per_second, errors in found:
            print(f"{label}: offered {rate:.0f}/s for {args.window:.0f}s: backlog grew {per_second:+.1f}/s, "
                  f"errors {errors}")  # fmt: skip
    sustainable, raw_sustainable = (
        max((rate for rate, per_second, errors in found if per_second <= 1.0 and not errors), default=0.0)
        for found in (rates, raw_rates)
    )
    fields = " ".join(
        f"{name}_{key}={value:.2f}" for name, r in results.items() for key, value in r.items() if key != "processed"
    )
    print(f"SUMMARY {fields} sustainable_eps={sustainable:.0f} raw_sustainable_eps={raw_sustainable:.0f} "
          f"window_s={args.window:.0f} events={args.events} prefetch={args.prefetch or 'configured'} "
          f"load={','.join(f'{v:.2f}' for v in os.getloadavg())} {software()}")  # fmt: skip


if __name__ == "__main__":
    main()
