"""Inbox upkeep outside the hot path: the sweeper's claims of stranded and lost rows, the touch that marks
them enqueued again, and retention's payload drop. Every claim uses `FOR UPDATE SKIP LOCKED`, so two sweeps
and a worker applying a row never wait on each other."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, and_, or_, select, text, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.status import UNPROCESSED_STATUSES, EventStatus
from models.tables import WebhookEvent

_PENDING = sorted(status.value for status in UNPROCESSED_STATUSES)


def claim_stranded(
    session: Session, *, received_before: dt.datetime, stuck_before: dt.datetime, limit: int
) -> list[str]:
    """Lock pending rows that no task will pick up: `received` (the broker was down when they arrived) or
    `enqueued` but untouched for too long (task lost with a Redis restart, or stuck in a dead worker).

    `SKIP LOCKED` lets two sweeps run at once without waiting on each other or on a worker that is applying
    the row right now; the caller re-enqueues and calls `touch_enqueued` before committing, so a concurrent
    sweep re-checks the condition against the new `updatedAt` and leaves the row alone.
    """
    return list(
        session.execute(
            select(WebhookEvent.id)
            .where(
                or_(
                    and_(WebhookEvent.status == EventStatus.RECEIVED.value, WebhookEvent.receivedAt <= received_before),
                    and_(WebhookEvent.status == EventStatus.ENQUEUED.value, WebhookEvent.updatedAt <= stuck_before),
                )
            )
            .order_by(WebhookEvent.receivedAt)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def claim_lost(session: Session, row_ids: list[str], *, untouched_since: dt.datetime) -> list[str]:
    """Lock rows the broker holds no message for, if they are still `enqueued` and untouched since then
    (a worker that applied, retried or holds a row meanwhile changed it or locks it: `SKIP LOCKED`)."""
    return list(
        session.execute(
            select(WebhookEvent.id)
            .where(
                WebhookEvent.id.in_(row_ids),
                WebhookEvent.status == EventStatus.ENQUEUED.value,
                WebhookEvent.updatedAt <= untouched_since,
            )
            .order_by(WebhookEvent.receivedAt)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


_DROP_OLD_PAYLOADS = text(
    """
    UPDATE "WebhookEvent" SET payload = NULL, "updatedAt" = :now
     WHERE id IN (SELECT id FROM "WebhookEvent"
                   WHERE status IN ('processed', 'ignored') AND payload IS NOT NULL AND "processedAt" < :cutoff
                   ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
    """
)


def drop_old_payloads(connection: Connection, cutoff: dt.datetime, limit: int) -> int:
    """Retention: forget the bodies of final events processed before `cutoff`, keep the rows (dedupe, audit).

    Only `processed`/`ignored` rows: `failed` and `dead` keep their payload for replay. Returns rows changed.
    """
    return connection.execute(_DROP_OLD_PAYLOADS, {"now": utcnow(), "cutoff": cutoff, "limit": limit}).rowcount


def touch_enqueued(session: Session, row_ids: list[str]) -> None:
    """Mark rows (re-)enqueued now, which restarts their stuck clock."""
    if row_ids:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(row_ids), WebhookEvent.status.in_(_PENDING))
            .values(status=EventStatus.ENQUEUED.value, updatedAt=utcnow())
        )
