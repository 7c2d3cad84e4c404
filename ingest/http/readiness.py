"""Readiness: do PostgreSQL and the broker answer, within a short deadline, checked in parallel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from sqlalchemy import Engine, text

from ingest.broker import redis_client as broker

_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def database_answers(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def check(engine: Engine, broker_url: str, timeout: float) -> dict[str, bool]:
    """{"database": ok?, "broker": ok?}; a check still running at the deadline counts as failed."""
    futures = {
        "database": _checks.submit(database_answers, engine),
        "broker": _checks.submit(broker.ping, broker_url, timeout),
    }
    wait(futures.values(), timeout=timeout)
    return {name: future.done() and future.exception() is None for name, future in futures.items()}
