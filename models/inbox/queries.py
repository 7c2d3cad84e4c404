"""Read-only questions about the inbox: listing for operators, backlog gauges, one row's summary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Row, func, select, text
from sqlalchemy.orm import Session, defer

from models.tables import WebhookEvent

_BACKLOG = text(
    """
    SELECT status, count(*) AS rows,
           EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - min("receivedAt")) AS oldest_seconds
    FROM "WebhookEvent"
    WHERE status IN ('received', 'enqueued', 'failed', 'dead')
    GROUP BY status
    """
)
_SUMMARY = text(
    """SELECT provider, "eventId", "eventType", status, "receivedAt", "processedAt"
       FROM "WebhookEvent" WHERE id = :id"""
)


def backlog(connection: Connection) -> dict[str, tuple[int, float]]:
    """Rows not yet final, by status: (count, age in seconds of the oldest). Uses the (status, receivedAt) index."""
    return {row.status: (int(row.rows), float(row.oldest_seconds or 0.0)) for row in connection.execute(_BACKLOG).all()}


def enqueued_untouched_since(connection: Connection, untouched_since: dt.datetime, limit: int) -> list[str]:
    """Ids of `enqueued` rows not touched since then, oldest first (the (status, receivedAt) index)."""
    return list(
        connection.execute(
            select(WebhookEvent.id)
            .where(WebhookEvent.status == "enqueued", WebhookEvent.updatedAt <= untouched_since)
            .order_by(WebhookEvent.receivedAt)
            .limit(limit)
        ).scalars()
    )


def summary(connection: Connection, row_id: str) -> Row[Any] | None:
    """Identity and timing of one row (for the per-event log line and the lag histogram), or None."""
    return connection.execute(_SUMMARY, {"id": row_id}).one_or_none()


def find(
    session: Session,
    *,
    status: str | None = None,
    provider: str | None = None,
    event_type: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
    event_id: str | None = None,
    row_ids: list[str] | None = None,
) -> list[WebhookEvent]:
    """Rows matching the filters, newest first (payload deferred: listing never loads bodies)."""
    query = select(WebhookEvent).options(defer(WebhookEvent.payload)).order_by(WebhookEvent.receivedAt.desc())
    if status is not None:
        query = query.where(WebhookEvent.status == status)
    if provider is not None:
        query = query.where(WebhookEvent.provider == provider)
    if event_type is not None:
        query = query.where(WebhookEvent.eventType == event_type)
    if since is not None:
        query = query.where(WebhookEvent.receivedAt >= since)
    if event_id is not None:
        query = query.where(WebhookEvent.eventId == event_id)
    if row_ids is not None:
        query = query.where(WebhookEvent.id.in_(row_ids))
    return list(session.execute(query.limit(limit)).scalars())


def get(session: Session, row_id: str) -> WebhookEvent | None:
    return session.get(WebhookEvent, row_id)


def find_by_event_id(connection: Connection, provider: str, event_id: str) -> tuple[str, str] | None:
    """(row id, status) of the row stored under the provider's event id, or None (the unique key's index)."""
    row = connection.execute(
        select(WebhookEvent.id, WebhookEvent.status).where(
            WebhookEvent.provider == provider, WebhookEvent.eventId == event_id
        )
    ).one_or_none()
    return (row.id, row.status) if row is not None else None


def last_received(connection: Connection, provider: str, exclude_type: str) -> dt.datetime | None:
    """When the provider last delivered an event of ours (not one we synthesized ourselves)."""
    return connection.execute(
        select(func.max(WebhookEvent.receivedAt)).where(
            WebhookEvent.provider == provider, WebhookEvent.eventType != exclude_type
        )
    ).scalar_one_or_none()
