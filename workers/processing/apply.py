"""Applying one inbox event exactly once.

One transaction: lock the inbox row → return if already final → run the handler registered for
(provider, eventType) → mark the row. Effects and the `processed` mark commit together, so a crash at
any point leaves either nothing or everything; a redelivered task finds the row final and stops.

Lock order (deadlock freedom): every transaction takes the inbox row first (`inbox.lock`), then entity
rows in one fixed order: `EntityVersion` → `User` → `CreditBalance` → `CreditGrant` / `UsageHistory`.
Handlers lock at most one entity of each kind per event, through the `models` modules, in that order;
the one exception, a user upsert that releases its email from another `User` row, locks both rows at once
in `clerkId` order before writing either (`users.upsert_from_clerk`).

Attempts: `attempts` counts started attempts. An attempt that ends (applied, failed, or to be retried)
counts itself in the transaction that records it, so the happy path costs no extra round trip. An attempt
that never ends (the worker was SIGKILLed, or the handler crashes the process: a poison message) is
counted when its task is *redelivered* (kombu's Redis transport flags restored messages), in a small
transaction of its own before the retry; once `TASK_MAX_RETRIES + 1` attempts are spent the row is
`dead` and the handler is not run again.

No event holds a worker for long: every worker transaction sets `lock_timeout` and `statement_timeout`
(`DB_LOCK_TIMEOUT_MS`, `DB_STATEMENT_TIMEOUT_MS`) with `SET LOCAL`, so a row held elsewhere or a runaway
statement ends the attempt (rolled back, retried with reason `lock_timeout` / `statement_timeout`); and the
Celery task has a soft time limit (`TASK_SOFT_TIME_LIMIT`: the attempt is rolled back and retried with
reason `time_limit`, `dead` once the budget is spent) and a hard one (`TASK_TIME_LIMIT`: the pool child is
killed, the task redelivered and the attempt counted as lost, like any crashed worker).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ingest.config.database import default_engine
from ingest.config.settings import Settings, get_settings
from ingest.observability.error_origin import error_origin
from models import inbox
from models.db import transaction
from models.status import FINAL_STATUSES, REPLAYABLE_STATUSES, EventStatus, Failure
from workers.handlers import HANDLERS, HandlerContext
from workers.processing import telemetry
from workers.processing.errors import IgnoredByPolicy, NeedsLookup, PermanentError, is_transient, never_succeeds
from workers.processing.failure_reasons import reason_for
from workers.providers.retry import backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to the event; `retry_in` (seconds) is set when the task should run again."""

    status: str
    retry_in: float | None = None
    timed_out: bool = False  # the task's soft time limit ended this attempt


@dataclass
class SeenEvent:
    """What the processing transaction read of the row, for the log line and metrics (no extra query)."""

    provider: str
    eventId: str
    eventType: str
    receivedAt: object
    processedAt: object = None


def max_attempts(settings: Settings) -> int:
    """The attempt budget of one event: the first attempt plus `TASK_MAX_RETRIES` retries."""
    return settings.task_max_retries + 1


def process_event(
    row_id: str,
    *,
    attempt: int = 1,
    redelivered: bool = False,
    engine: Engine | None = None,
    settings: Settings | None = None,
) -> Outcome:
    """Apply the event once. `attempt` counts retries of this task (1 for the first); `redelivered` says
    the broker handed this same message out before and that delivery never finished."""
    settings = settings or get_settings()
    engine = engine or default_engine()
    started = time.perf_counter()
    seen: list[SeenEvent] = []
    try:
        if redelivered and _count_lost_attempt(engine, row_id, settings) == EventStatus.DEAD:
            log.error("event dead: its worker died on every attempt", extra={"event_row": row_id})
            return Outcome("dead")
        outcome = _apply(row_id, engine, settings, seen)
    except PermanentError as error:
        _record(engine, settings, row_id, EventStatus.FAILED, error.code, error.detail)
        outcome = Outcome("failed")
    except ValidationError as error:
        _record(engine, settings, row_id, EventStatus.FAILED, Failure.INVALID_PAYLOAD, _describe_validation(error))
        outcome = Outcome("failed")
    except Exception as error:
        origin = error_origin(error)  # for developers; never the message: it may quote payload values
        if never_succeeds(error):
            detail = "the database refused one of this event's values; a retry cannot succeed"
            _record(engine, settings, row_id, EventStatus.FAILED, Failure.INVALID_PAYLOAD, detail)
            outcome = Outcome("failed")
            reason_code = Failure.INVALID_PAYLOAD
        else:
            reason = reason_for(error)
            reason_code = reason.code
            status = _record(engine, settings, row_id, None, reason.code, reason.sentence, max_attempts(settings))
            if status == EventStatus.DEAD:
                outcome = Outcome("dead")
            else:  # also when the failure could not be recorded (database down): the row decides next time
                outcome = Outcome("retry", retry_in=backoff(attempt, cap=settings.retry_backoff_max))
            outcome = Outcome(outcome.status, outcome.retry_in, timed_out=reason.code == Failure.TIME_LIMIT)
        fields = {"event_row": row_id, "code": reason_code, "attempt": attempt, "error_type": origin.error_type}
        message = "handler raised" if reason_code == Failure.HANDLER_ERROR else "attempt failed"
        level = logging.WARNING if is_transient(error) else logging.ERROR
        log.log(level, message, extra={**fields, "error_at": origin.location})
    row = seen[0] if seen else None
    telemetry.event_finished(engine, row_id, outcome.status, attempt, time.perf_counter() - started, row)
    return outcome


MAX_LOOKUPS = 4  # provider values one event may need; each costs one rolled-back attempt


def _apply(row_id: str, engine: Engine, settings: Settings, seen: list[SeenEvent]) -> Outcome:
    """Apply in one transaction; a handler's `NeedsLookup` is served between two transactions (see errors)."""
    lookups: dict[str, object] = {}
    while True:
        try:
            return _apply_once(row_id, engine, HandlerContext(settings, lookups), seen)
        except NeedsLookup as need:
            if need.key in lookups or len(lookups) >= MAX_LOOKUPS:
                raise RuntimeError("a handler asked again for a value it was given") from None
            seen.clear()
            lookups[need.key] = need.lookup(settings)  # no transaction is open here


def _apply_once(row_id: str, engine: Engine, context: HandlerContext, seen: list[SeenEvent]) -> Outcome:
    settings = context.settings
    with transaction(engine) as session:
        bound_transaction(session, settings)
        event = inbox.lock(session, row_id)
        if event is None:
            return Outcome("missing")
        seen.append(SeenEvent(event.provider, event.eventId, event.eventType, event.receivedAt, event.processedAt))
        if event.status in FINAL_STATUSES:
            return Outcome("already_done")
        if event.status in REPLAYABLE_STATUSES:
            return Outcome(f"skipped_{event.status}")  # only `replay` makes these pending again
        handler = HANDLERS.get((event.provider, event.eventType))
        if handler is None:
            inbox.finish(session, event, EventStatus.IGNORED)
            seen[0].processedAt = event.processedAt
            return Outcome("ignored")
        try:
            handler(session, event, context)
        except IgnoredByPolicy as ignored:  # raised before any credit change; logs and links written commit
            inbox.finish(session, event, EventStatus.IGNORED, (ignored.code, ignored.detail))
            seen[0].processedAt = event.processedAt
            return Outcome("ignored")
        inbox.finish(session, event, EventStatus.PROCESSED)
        seen[0].processedAt = event.processedAt
        return Outcome("processed")


def _record(
    engine: Engine,
    settings: Settings,
    row_id: str,
    status: EventStatus | None,
    code: str,
    detail: str,
    budget: int | None = None,
) -> str | None:
    """Best effort: when the database itself is down, the retry or the sweeper records it later."""
    try:
        with transaction(engine) as session:
            bound_transaction(session, settings)
            return inbox.record_failure(session, row_id, status, code, detail, max_attempts=budget)
    except Exception:
        log.warning("could not record the failure of an event", extra={"event_row": row_id, "code": code})
        return None


def _count_lost_attempt(engine: Engine, row_id: str, settings: Settings) -> str | None:
    with transaction(engine) as session:
        bound_transaction(session, settings)
        return inbox.count_lost_attempt(session, row_id, max_attempts=max_attempts(settings))


_TIMEOUTS = text("SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :statement, true)")


def bound_transaction(session: Session, settings: Settings) -> None:
    """`SET LOCAL` lock and statement timeouts for this transaction only (pooled connections keep no trace)."""
    session.execute(
        _TIMEOUTS, {"lock": f"{settings.db_lock_timeout_ms}ms", "statement": f"{settings.db_statement_timeout_ms}ms"}
    )


def _describe_validation(error: ValidationError) -> str:
    """Field paths and messages only: never the offending values (they may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'payload'}: {item['msg']}" for item in error.errors()[:5]
    )
