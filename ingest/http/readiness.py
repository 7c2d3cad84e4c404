"""Readiness: do PostgreSQL and the broker answer, within a short deadline, checked in parallel.

Each failed check carries the sentence a start-up warning would print, naming the setting to look at, so
`/readyz` and `serve`'s log say the same thing about a broken setup.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from sqlalchemy import Engine, text

from ingest.broker import redis_client as broker
from ingest.config.database import connect_problem
from ingest.config.settings import Settings

_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def database_answers(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def check(engine: Engine, broker_url: str, timeout: float) -> dict[str, str | None]:
    """{"database": None when it answers, else why not; "broker": the same}; still running at the deadline
    counts as failed."""
    futures = {
        "database": _checks.submit(database_answers, engine),
        "broker": _checks.submit(broker.ping, broker_url, timeout),
    }
    wait(futures.values(), timeout=timeout)
    return {
        "database": _problem(futures["database"], timeout, lambda error: connect_problem(error, str(engine.url))),
        "broker": _problem(futures["broker"], timeout, lambda error: f"broker unreachable: {error}"),
    }


def _problem(future: Future[None], timeout: float, describe: Callable[[BaseException], str]) -> str | None:
    if not future.done():
        return f"no answer within READY_TIMEOUT ({timeout:g}s)"
    error = future.exception()
    return None if error is None else describe(error)


SETTING_OF = {"database": "DATABASE_URL", "broker": "CELERY_BROKER_URL"}


def setup_problems(settings: Settings, results: dict[str, str | None]) -> list[str]:
    """One sentence per broken part of the setup, each starting with the setting to change."""
    problems = [f"{SETTING_OF[name]}: {reason}" for name, reason in results.items() if reason]
    if not settings.clerk_webhook_secret and not settings.asaas_webhook_token:
        problems.append(
            "CLERK_WEBHOOK_SECRET and ASAAS_WEBHOOK_TOKEN are unset: every webhook is refused (provider_not_configured)"
        )
    return problems


def problems_at_start(settings: Settings) -> list[str]:
    """`serve`'s start: the same checks `/readyz` makes, once, on a throw-away engine."""
    from ingest.config.database import engine_from

    engine = engine_from(settings)
    try:
        return setup_problems(settings, check(engine, settings.celery_broker_url, settings.ready_timeout))
    finally:
        engine.dispose()
