"""The production gunicorn configuration, in one place for `pedro-ingest serve` and the benchmarks.

The receiver runs gevent workers. Its request path is almost all waiting (PostgreSQL, Redis) plus a
little CPU, and requests share one INSERT per batch through the process's inbox writer. With threads
(gthread), every request crossed four OS threads and fought for the GIL: on 2 cores a third of the
CPU sat idle while requests queued, and the writer's batches stayed at 3 events. With greenlets in one
thread, handing an event to the writer and waking the request is a switch, not a futex and a GIL
handover, and psycopg2 waits cooperatively (`ingest.http.server.gevent_db`), so a batch is in PostgreSQL while the next
one gathers. Measured by `bench/receiver.py` in one run: 1.6x the gthread receiver's requests/s.
"""

from __future__ import annotations

import sys

WORKER_CLASS = "gevent"
WORKER_CONNECTIONS = 1000  # concurrent requests per process; each waiting request is one greenlet


def gunicorn_options(workers: int) -> list[str]:
    """The server flags every receiver-like app gets (`serve`, and both sides of every benchmark)."""
    return ["--workers", str(workers), "--worker-class", WORKER_CLASS, "--worker-connections", str(WORKER_CONNECTIONS)]


def describe(workers: int) -> str:
    """How the benchmarks print the configuration they ran."""
    return f"w{workers}x{WORKER_CLASS}({WORKER_CONNECTIONS})"


def gunicorn_argv(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        *gunicorn_options(workers),
        "--timeout", "30",
        "--graceful-timeout", "20",
        "--config", "python:ingest.http.server.gunicorn_conf",
        "ingest.http.server.wsgi:app",
    ]  # fmt: skip
