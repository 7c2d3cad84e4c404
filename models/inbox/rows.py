"""The inbox's hot path (`WebhookEvent`): storing, locking and marking rows. The sweeper's and retention's
writes are in `maintenance`, replay's reset in `replay`.

The receiver stores with `INSERT … ON CONFLICT DO NOTHING RETURNING id`, so a redelivery is detected by
the unique key in one round trip; workers lock a row with `FOR UPDATE` for the whole transaction that
applies its effects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, text, update
from sqlalchemy.orm import Session

from models.base import new_id, utcnow
from models.status import FINAL_STATUSES, EventStatus, Failure
from models.tables import WebhookEvent

_FINAL = sorted(status.value for status in FINAL_STATUSES)
_PENDING = [EventStatus.RECEIVED.value, EventStatus.ENQUEUED.value]

_MARK_RECEIVED_MANY = text(
    """UPDATE "WebhookEvent" SET status = 'received', "updatedAt" = :now
       WHERE id = ANY(:ids) AND status = 'enqueued'"""
)


@dataclass(frozen=True)
class NewEvent:
    """An authentic event as the receiver hands it to the inbox.

    `status` is `received` (to be processed) or `failed` for an authentic body stored only for replay,
    with `error` = (code, detail).
    """

    provider: str
    event_id: str
    event_type: str
    payload_json: str
    occurred_at: dt.datetime | None
    status: EventStatus = EventStatus.RECEIVED
    error: tuple[str, str] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The dedupe key: (provider, provider's event id)."""
        return (self.provider, self.event_id)


_STORE_MANY = """
    INSERT INTO "WebhookEvent"
        (id, provider, "eventId", "eventType", payload, "receivedAt", "occurredAt", status, attempts,
         "lastError", "lastErrorDetail", "updatedAt")
    VALUES {rows}
    ON CONFLICT (provider, "eventId") DO NOTHING
    RETURNING id, provider, "eventId"
"""
_STORE_MANY_ROW = "(%s, %s, %s, %s, %s::jsonb, %s, %s, %s, 0, %s, %s, %s)"


def store_many(connection: Connection, events: list[NewEvent]) -> dict[tuple[str, str], str]:
    """Store a batch in one statement (group commit); returns {(provider, event_id): new row id}.

    Events whose key is already stored, or repeated inside the batch, are absent from the result.
    """
    now = utcnow()
    rows = []
    for e in events:
        code, detail = e.error or (None, None)
        rows.append(
            (new_id(), e.provider, e.event_id, e.event_type, e.payload_json, now, e.occurred_at,
             e.status.value, code, detail[:2000] if detail else None, now)
        )  # fmt: skip
    # Through SQLAlchemy (not a raw cursor) so that errors are wrapped and dead connections invalidated.
    sql = _STORE_MANY.format(rows=", ".join([_STORE_MANY_ROW] * len(rows)))
    inserted = connection.exec_driver_sql(sql, tuple(value for row in rows for value in row)).all()
    return {(provider, event_id): row_id for row_id, provider, event_id in inserted}


def mark_received_many(connection: Connection, row_ids: list[str]) -> None:
    """`enqueued` → `received` for a batch the broker refused (the sweeper's signal to enqueue it)."""
    connection.execute(_MARK_RECEIVED_MANY, {"ids": row_ids, "now": utcnow()})


@dataclass
class LockedEvent:
    """An inbox row as a handler sees it: read with the row lock held, plain data (no ORM state to flush)."""

    id: str
    provider: str
    eventId: str
    eventType: str
    payload: dict[str, Any] | None
    status: str
    occurredAt: dt.datetime | None
    receivedAt: dt.datetime
    attempts: int
    processedAt: dt.datetime | None = None


_LOCK = text(
    """SELECT id, provider, "eventId", "eventType", payload, status, "occurredAt", "receivedAt", attempts
       FROM "WebhookEvent" WHERE id = :id FOR UPDATE"""
)
_FINISH = text(
    """UPDATE "WebhookEvent" SET status = :status, attempts = attempts + 1, "lastError" = :code,
              "lastErrorDetail" = :detail, "processedAt" = :now, "updatedAt" = :now
       WHERE id = :id"""
)


def lock(session: Session, row_id: str) -> LockedEvent | None:
    """The row, locked until the end of the transaction (concurrent workers queue up behind it)."""
    row = session.execute(_LOCK, {"id": row_id}).one_or_none()
    return LockedEvent(*row) if row is not None else None


def lock_if_free(session: Session, row_id: str) -> LockedEvent | None:
    """The row, locked, or None when it is missing or another transaction holds it (that one applies it):
    for taking a second row after other locks without risking a deadlock."""
    row = session.execute(text(_LOCK.text + " SKIP LOCKED"), {"id": row_id}).one_or_none()
    return LockedEvent(*row) if row is not None else None


def finish(session: Session, event: LockedEvent, status: EventStatus, reason: tuple[str, str] | None = None) -> None:
    """Mark a locked row processed or ignored, in the transaction that applied its effects; `reason`
    (code, detail) says why an event was ignored by a policy, so that it stays findable and replayable."""
    now = utcnow()
    code, detail = reason or (None, None)
    session.execute(_FINISH, {"id": event.id, "status": status.value, "now": now, "code": code, "detail": detail})
    event.status = status.value
    event.attempts += 1
    event.processedAt = now


def record_failure(
    session: Session,
    row_id: str,
    status: EventStatus | None,
    code: str,
    detail: str,
    *,
    max_attempts: int | None = None,
) -> str | None:
    """Count an attempt that did not apply, with its reason (`failed`, `dead`, or still pending).

    With `max_attempts`, a pending row whose count reaches it becomes `dead` in the same statement.
    Returns the row's status afterwards (None when it is missing or already final).
    """
    new_status: object = WebhookEvent.status if status is None else status.value
    if status is None and max_attempts is not None:
        exhausted = WebhookEvent.attempts + 1 >= max_attempts
        new_status = case((exhausted, EventStatus.DEAD.value), else_=WebhookEvent.status)
    return session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == row_id, WebhookEvent.status.not_in(_FINAL))
        .values(
            attempts=WebhookEvent.attempts + 1,
            lastError=code,
            lastErrorDetail=detail[:2000],
            updatedAt=utcnow(),
            status=new_status,
        )
        .returning(WebhookEvent.status)
    ).scalar_one_or_none()


def count_lost_attempt(session: Session, row_id: str, *, max_attempts: int) -> str | None:
    """A redelivered task means its previous delivery died before finishing (worker killed, poison message):
    count that attempt, which nothing else recorded, and make the row `dead` once the budget is spent.

    Only pending rows are touched (a final, failed or dead row is left alone); returns the status afterwards.
    """
    return session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == row_id, WebhookEvent.status.in_(_PENDING))
        .values(
            attempts=WebhookEvent.attempts + 1,
            lastError=Failure.WORKER_LOST.value,
            lastErrorDetail=Failure.WORKER_LOST.sentence,
            updatedAt=utcnow(),
            status=case((WebhookEvent.attempts + 1 >= max_attempts, EventStatus.DEAD.value), else_=WebhookEvent.status),
        )
        .returning(WebhookEvent.status)
    ).scalar_one_or_none()
