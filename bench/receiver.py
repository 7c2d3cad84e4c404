"""Receiver throughput and latency against a bare Flask app, same gunicorn configuration, same run.

    python bench/receiver.py [--seconds 5] [--rounds 3] [--connections 32] [--driver wrk|python]
                             [--server production|gthread]

Prints, for the bare app and for pedro-ingest's receiver (verify + store + enqueue): requests/s,
p50/p99 latency, errors, the ratio receiver/bare, and p99 at half of the receiver's own max rate.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
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
    describe_server,
    free_port,
    have_wrk,
    receiver_env,
    run_open_loop,
    run_python,
    run_wrk,
    software,
    start_gunicorn,
    stop,
)


def drive(args: argparse.Namespace, url: str, requests: SignedRequests, delay_ms: float = 0.0) -> LoadResult:
    if args.driver == "wrk":
        return run_wrk(url, "/webhooks/clerk", requests, seconds=args.seconds, connections=args.connections,
                       threads=args.load_threads, rate_per_connection_delay_ms=delay_ms)  # fmt: skip
    return run_python(url, "/webhooks/clerk", requests, seconds=args.seconds, connections=args.connections,
                      delay_ms=delay_ms)  # fmt: skip


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU of gunicorn's worker processes so far (from /proc; 0 where /proc is absent)."""
    total = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:  # fields[1] is the parent pid
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def measured(args: argparse.Namespace, server: subprocess.Popen, url: str, requests: SignedRequests):
    """One drive and the server's CPU microseconds per request during it: a figure the machine's other load
    disturbs far less than requests/s."""
    before = server_cpu_seconds(server)
    result = drive(args, url, requests)
    cpu_us = (server_cpu_seconds(server) - before) / max(result.requests, 1) * 1e6
    return result, cpu_us


def running(app: str, env: dict[str, str], args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    return start_gunicorn(app, port, env, args.workers, args.server), f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="seconds of load per app per round")
    parser.add_argument("--rounds", type=int, default=3, help="bare/receiver rounds, alternated")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (both apps)")
    parser.add_argument(
        "--server",
        choices=["production", "gthread"],
        default="production",
        help="gunicorn setup for both apps: what `serve` runs, or the earlier gthread x8",
    )
    parser.add_argument("--load-threads", type=int, default=1, help="wrk processes")
    parser.add_argument("--driver", choices=["wrk", "python"], default="wrk" if have_wrk() else "python")
    parser.add_argument("--no-half-rate", dest="half_rate", action="store_false")
    args = parser.parse_args()

    queue = f"pedro-bench-{secrets.token_hex(4)}"
    with ThrowawayDatabase() as database:
        env = receiver_env(database.url, queue)
        # Every receiver drive gets deliveries of its own: a repeated svix-id would be a (cheaper) duplicate.
        batches = [SignedRequests(max(2000, 8000 * args.seconds)) for _ in range(args.rounds + 2)]
        requests = batches[0]
        bare_server, bare_url = running("bench.bare_app:app", env, args)
        receiver_server, receiver_url = running("ingest.http.server.wsgi:app", env, args)
        started = time.monotonic()
        try:
            # Both servers are up for the whole run and are driven in turn, round after round: this machine's
            # speed drifts by a factor of two over minutes, so only figures taken side by side compare.
            warm = argparse.Namespace(**{**vars(args), "seconds": 1})
            drive(warm, bare_url, requests)
            drive(warm, receiver_url, batches[1])
            rounds, cpu = [], []
            for number in range(args.rounds):
                bare_round, bare_cpu = measured(args, bare_server, bare_url, requests)
                receiver_round, receiver_cpu = measured(args, receiver_server, receiver_url, batches[2 + number])
                rounds.append((bare_round, receiver_round))
                cpu.append((bare_cpu, receiver_cpu))
            half = None
            if args.half_rate:
                # Open loop at exactly half of the measured peak: latency from each request's scheduled time.
                peak = statistics.median(receiver.rps for _, receiver in rounds)
                phases = [("half", max(args.seconds, 5), peak / 2)]
                fresh = SignedRequests(int(peak / 2 * phases[0][1]) + 100)
                half = run_open_loop(receiver_url, "/webhooks/clerk", fresh, phases)["half"]
        finally:
            stop(bare_server)
            stop(receiver_server)
        stored = database.scalar('SELECT count(*) FROM "WebhookEvent"')
        queued = redis.Redis.from_url(REDIS_URL).llen(queue)
        redis.Redis.from_url(REDIS_URL).delete(queue)
        elapsed = time.monotonic() - started

    for number, ((bare, receiver), (bare_cpu, receiver_cpu)) in enumerate(zip(rounds, cpu, strict=True), 1):
        print(f"round {number}  bare      {bare.line()}  server CPU {bare_cpu:.0f} us/req")
        print(f"round {number}  receiver  {receiver.line()}  server CPU {receiver_cpu:.0f} us/req"
              f"  ratio {receiver.rps / bare.rps:.2f}")  # fmt: skip
    bare, receiver = (median_result([r[i] for r in rounds]) for i in (0, 1))
    ratio = statistics.median(r.rps / b.rps for b, r in rounds if b.rps)
    cpu_ratio = statistics.median(bare_cpu / receiver_cpu for bare_cpu, receiver_cpu in cpu if receiver_cpu)
    print(f"server CPU per request, bare/receiver (median of rounds): {cpu_ratio:.2f}")
    print(f"stored {stored:,} rows, queued {queued:,} tasks in {elapsed:.0f}s")
    if half:
        print(f"receiver at half rate ({half.rps:,.0f} req/s): p99 {half.p99_ms:.2f} ms, errors {half.errors}")
    body_kb = len(requests.body) / 1024
    errors = sum(b.errors + r.errors for b, r in rounds) + (half.errors if half else 0)
    print(
        f"SUMMARY receiver/bare={ratio:.2f} cpu_bare/receiver={cpu_ratio:.2f} "
        f"bare_rps={bare.rps:.0f} receiver_rps={receiver.rps:.0f} "
        f"receiver_p50_ms={receiver.p50_ms:.2f} receiver_p99_ms={receiver.p99_ms:.2f} "
        f"half_rate_p99_ms={half.p99_ms if half else float('nan'):.2f} errors={errors} "
        f"rounds={args.rounds}x{args.seconds}s body_kb={body_kb:.1f} driver={args.driver} "
        f"connections={args.connections} gunicorn={describe_server(args.server, args.workers)} "
        f"{software()}"
    )


def median_result(results: list[LoadResult]) -> LoadResult:
    """The round with the median throughput (its latencies belong to it)."""
    return sorted(results, key=lambda result: result.rps)[len(results) // 2]


if __name__ == "__main__":
    main()
