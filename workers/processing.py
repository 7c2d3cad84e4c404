"""Applying one inbox event exactly once (DESIGN.md §2.4).

One transaction: lock the inbox row → return if already final → run the handler registered for
(provider, eventType) → mark the row. Effects and the `processed` mark commit together, so a crash at
any point leaves either nothing or everything; a redelivered task finds the row final and stops.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Engine

from ingest.settings import Settings, get_settings
from models import inbox
from models.db import default_engine, transaction
from models.tables import FINAL_STATUSES, EventStatus
from workers import telemetry
from workers.errors import PermanentError, is_transient
from workers.handlers import HANDLERS, HandlerContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to the event; `retry_in` (seconds) is set when the task should run again."""

    status: str
    retry_in: float | None = None


def backoff_seconds(attempt: int, cap: float) -> float:
    """Exponential backoff with full jitter: 1, 2, 4… seconds, capped, spread to avoid thundering herds."""
    return random.uniform(0.5, 1.0) * min(cap, 2.0 ** max(attempt - 1, 0))


def process_event(
    row_id: str, *, attempt: int = 1, engine: Engine | None = None, settings: Settings | None = None
) -> Outcome:
    """Apply the event once. `attempt` counts deliveries of this task (1 for the first)."""
    settings = settings or get_settings()
    engine = engine or default_engine()
    started = time.perf_counter()
    try:
        outcome = _apply(row_id, engine, settings)
    except PermanentError as error:
        _record(engine, row_id, EventStatus.FAILED, error.code, error.detail)
        outcome = Outcome("failed")
    except ValidationError as error:
        _record(engine, row_id, EventStatus.FAILED, "invalid_payload", _describe_validation(error))
        outcome = Outcome("failed")
    except Exception as error:
        code = "transient_error" if is_transient(error) else "handler_error"
        detail = f"{type(error).__name__} on attempt {attempt}"
        if attempt > settings.task_max_retries:
            _record(engine, row_id, EventStatus.DEAD, code, detail)
            outcome = Outcome("dead")
        else:
            _record(engine, row_id, None, code, detail)
            outcome = Outcome("retry", retry_in=backoff_seconds(attempt, settings.retry_backoff_max))
        if not is_transient(error):
            log.exception("handler raised", extra={"event_row": row_id})
    telemetry.event_finished(engine, row_id, outcome.status, attempt, time.perf_counter() - started)
    return outcome


def _apply(row_id: str, engine: Engine, settings: Settings) -> Outcome:
    with transaction(engine) as session:
        event = inbox.lock(session, row_id)
        if event is None:
            return Outcome("missing")
        if event.status in FINAL_STATUSES:
            return Outcome("already_done")
        handler = HANDLERS.get((event.provider, event.eventType))
        if handler is None:
            inbox.finish(session, event, EventStatus.IGNORED)
            return Outcome("ignored")
        handler(session, event, HandlerContext(settings=settings))
        inbox.finish(session, event, EventStatus.PROCESSED)
        return Outcome("processed")


def _record(engine: Engine, row_id: str, status: EventStatus | None, code: str, detail: str) -> None:
    """Best effort: when the database itself is down, the retry or the sweeper records it later."""
    try:
        with transaction(engine) as session:
            inbox.record_failure(session, row_id, status, code, detail)
    except Exception:
        log.warning("could not record the failure of an event", extra={"event_row": row_id, "code": code})


def _describe_validation(error: ValidationError) -> str:
    """Field paths and messages only: never the offending values (they may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'payload'}: {item['msg']}" for item in error.errors()[:5]
    )
