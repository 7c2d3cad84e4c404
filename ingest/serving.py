"""The production gunicorn configuration, in one place for `pedro-ingest serve` and the benchmarks."""

from __future__ import annotations

import sys

THREADS_PER_WORKER = 8


def gunicorn_workers(workers: int) -> tuple[int, int]:
    """(processes, threads per process) that `serve` runs with."""
    return workers, THREADS_PER_WORKER


def gunicorn_argv(host: str, port: int, workers: int) -> list[str]:
    processes, threads = gunicorn_workers(workers)
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(processes),
        "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--timeout", "30",
        "--graceful-timeout", "20",
        "--config", "python:ingest.gunicorn_conf",
        "ingest.wsgi:app",
    ]  # fmt: skip
