"""Where the receiver's CPU per request goes, by stage, under full load (wrk or the Python driver).

    python bench/receiver_profile.py [--seconds 8] [--connections 32] [--rate 100]

The production server (gunicorn, gevent workers, `ingest.http.server.wsgi`) and the bare Flask app run
side by side in one run. While each is driven, py-spy samples its worker processes (CPU only, not
idle waits, 250 Hz) and /proc gives their CPU seconds; each sample is charged to the first stage whose
code is on its stack (`STAGES`, most specific first), and a stage's µs per request is its share of the
samples times the measured CPU per request. PostgreSQL and Redis are separate processes: their rows
are the client side (psycopg2/SQLAlchemy, kombu/redis-py); the servers' own CPU is reported below the
table per request. Needs py-spy (`pip install -e '.[bench]'`) and permission to trace child processes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, SignedRequests, ThrowawayDatabase, receiver_env, software, stop  # noqa: E402
from bench.receiver import drive, running, server_cpu_seconds  # noqa: E402

# (stage, markers): a sample belongs to the first stage one of whose markers is in one of its frames.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("metrics (prometheus counters)", ("prometheus_client/", "count_batch (")),
    ("logging", ("logging/__init__", "pythonjsonlogger", "request_log.py")),
    ("verification (Svix HMAC)", ("ingest/receiver/verification.py", "svix/")),
    ("body read (size, deadline, budget)", ("ingest/http/body.py",)),
    ("envelope and JSON", ("ingest/receiver/envelopes.py", "json/", "ingest/http/responses.py")),
    ("Redis publish (redis-py LPUSH)", ("ingest/broker/", "kombu/", "redis/")),
    ("PostgreSQL client (INSERT, psycopg2)", ("models/", "sqlalchemy/", "psycopg2", "psycogreen")),
    ("writer hand-off and wait", ("ingest/receiver/inbox_writer.py", "concurrent/futures", "queue.py")),
    ("receiver core (headers, NewEvent)", ("ingest/receiver/",)),
    ("Flask and Werkzeug (routing, request, response)", ("flask/", "werkzeug/", "ingest/http/")),
    ("HTTP server (gunicorn parse, gevent sockets)", ("gunicorn/", "gevent/", "socket.py")),
]
OTHER = "other (interpreter, gc)"


def spy_path() -> str | None:
    """py-spy beside this interpreter (a virtualenv not on PATH), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def stage_of(frames: list[str]) -> str:
    for stage, markers in STAGES:
        if any(marker in frame for frame in frames for marker in markers):
            return stage
    return OTHER


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def sampled(args: argparse.Namespace, server: subprocess.Popen, url: str, requests: SignedRequests):
    """Drive the server while py-spy samples it; returns (load result, CPU µs/request, Counter of stages)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "samples.txt"
        spy = subprocess.Popen(
            [spy_path(), "record", "--pid", str(server.pid), "--subprocesses",
             "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking",
             "--duration", str(args.seconds + 1)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        before = server_cpu_seconds(server)
        result = drive(args, url, requests)
        cpu_us = (server_cpu_seconds(server) - before) / max(result.requests, 1) * 1e6
        spy.wait(args.seconds + 60)
        workers = tuple(f"process {pid}:" for pid in children(server.pid))  # not the arbiter (master)
        stages: Counter[str] = Counter()
        for line in out.read_text().splitlines() if out.exists() else []:
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")  # "process <master>", "process <worker>", then the worker's frames
            if len(frames) > 1 and frames[1].startswith(workers):
                stages[stage_of(frames[2:])] += int(count)
    return result, cpu_us, stages


def table(cpu_us: float, stages: Counter[str], label: str) -> str:
    total = sum(stages.values()) or 1
    lines = [f"| {label} stage | CPU µs per request | share |", "|---|---:|---:|"]
    for stage, count in stages.most_common():
        lines.append(f"| {stage} | {cpu_us * count / total:,.0f} | {count / total:.0%} |")
    lines.append(f"| **total (server CPU per request)** | **{cpu_us:,.0f}** | 100% |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=["production", "gthread"], default="production")
    parser.add_argument("--load-threads", type=int, default=1)
    parser.add_argument("--driver", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    args = parser.parse_args()
    if not spy_path():
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")

    queue = f"pedro-bench-{secrets.token_hex(4)}"
    with ThrowawayDatabase() as database:
        env = receiver_env(database.url, queue)
        bare, bare_url = running("bench.bare_app:app", env, args)
        receiver, receiver_url = running("ingest.http.server.wsgi:app", env, args)
        try:
            warm = argparse.Namespace(**{**vars(args), "seconds": 1})
            drive(warm, bare_url, SignedRequests(2000))
            drive(warm, receiver_url, SignedRequests(8000))
            bare_result, bare_cpu, bare_stages = sampled(args, bare, bare_url, SignedRequests(2000))
            result, cpu_us, stages = sampled(args, receiver, receiver_url, SignedRequests(8000 * args.seconds))
        finally:
            stop(bare)
            stop(receiver)
        import redis

        redis.Redis.from_url(REDIS_URL).delete(queue)

    print(f"# receiver, per request under full load ({args.driver}, {args.connections} connections, load "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})\n")  # fmt: skip
    print(table(cpu_us, stages, "receiver"))
    print()
    print(table(bare_cpu, bare_stages, "bare Flask"))
    own = {s: cpu_us * c / sum(stages.values()) for s, c in stages.items()}
    print(
        f"\nSUMMARY receiver_cpu_us={cpu_us:.0f} bare_cpu_us={bare_cpu:.0f} receiver_rps={result.rps:.0f} "
        f"bare_rps={bare_result.rps:.0f} errors={result.errors + bare_result.errors} "
        f"samples={sum(stages.values())} largest={max(own, key=own.get).split(' ')[0] if own else 'none'} "
        f"driver={args.driver} {software()}"
    )


if __name__ == "__main__":
    main()
