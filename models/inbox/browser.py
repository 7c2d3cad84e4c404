"""Browsing the inbox for operators: filtered, keyset-paginated event pages, counts, one event's effects.

Pages use a keyset cursor on ("receivedAt", id), newest first, so page 10,000 costs what page 1 costs:
every query is driven by an index ("receivedAt", or (status, "receivedAt"), or the (provider, eventId)
key), never an OFFSET over millions of rows. Filters by user and payment id first resolve to the rows
that name them (effects, failed rows), then page through those.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, select, text, tuple_
from sqlalchemy.orm import Session, defer

from models.status import NOT_FINAL_STATUSES, UNPROCESSED_STATUSES, EventStatus
from models.tables import WebhookEvent

PROVIDERS = ("clerk", "asaas", "asaas-sync")


@dataclass(frozen=True)
class EventFilter:
    provider: str | None = None
    event_type: str | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    event_id: str | None = None  # the provider's id (svix msg_…, Asaas evt_…)
    row_ids: tuple[str, ...] | None = None  # resolved from a user or a payment id; () matches nothing


@dataclass
class EventPage:
    rows: list[WebhookEvent]
    next_cursor: str | None


def encode_cursor(received_at: dt.datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{received_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, str] | None:
    """None for no cursor; a malformed one raises ValueError (the caller answers 400)."""
    if not cursor:
        return None
    stamp, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    if not row_id:
        raise ValueError("malformed cursor")
    return dt.datetime.fromisoformat(stamp), row_id


def events_query(where: EventFilter, cursor: tuple[dt.datetime, str] | None, limit: int) -> Select[Any]:
    """The page's SELECT (exposed so that the benchmark can EXPLAIN exactly what the console runs)."""
    query = select(WebhookEvent).options(defer(WebhookEvent.payload))
    conditions = []
    if where.provider:
        conditions.append(WebhookEvent.provider == where.provider)
    if where.event_type:
        conditions.append(WebhookEvent.eventType == where.event_type)
    if where.status:
        conditions.append(WebhookEvent.status == where.status)
    if where.since:
        conditions.append(WebhookEvent.receivedAt >= where.since)
    if where.until:
        conditions.append(WebhookEvent.receivedAt < where.until)
    if where.event_id:  # every provider listed, so the (provider, eventId) key drives the lookup
        providers = [where.provider] if where.provider else list(PROVIDERS)
        conditions.append(and_(WebhookEvent.provider.in_(providers), WebhookEvent.eventId == where.event_id))
    if where.row_ids is not None:
        conditions.append(WebhookEvent.id.in_(where.row_ids or ("",)))
    if cursor is not None:
        conditions.append(tuple_(WebhookEvent.receivedAt, WebhookEvent.id) < tuple_(cursor[0], cursor[1]))
    order = (WebhookEvent.receivedAt.desc(), WebhookEvent.id.desc())
    return query.where(*conditions).order_by(*order).limit(limit + 1)


def event_page(session: Session, where: EventFilter, cursor: str | None = None, limit: int = 50) -> EventPage:
    rows = list(session.execute(events_query(where, decode_cursor(cursor), limit)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, encode_cursor(rows[-1].receivedAt, rows[-1].id) if more and rows else None)


_PAYMENT_ROWS = text(
    """
    SELECT "sourceEventId" FROM "CreditGrant"
     WHERE ("grantKey" = 'asaas:payment:' || :payment OR "grantKey" LIKE 'asaas:payment:' || :payment || ':%')
       AND "sourceEventId" IS NOT NULL
    UNION
    SELECT id FROM "WebhookEvent"
     WHERE status = ANY(:pending) AND provider IN ('asaas', 'asaas-sync') AND payload->'payment'->>'id' = :payment
    """
)


def rows_naming_payment(session: Session, payment_id: str) -> tuple[str, ...]:
    """Events that granted or reversed this Asaas payment, and unfinished/failed ones that name it.

    The second half scans only rows not yet processed (the status index), which stay few: a processed
    event that named the payment produced a keyed effect and is found by the first half.
    """
    found = session.execute(_PAYMENT_ROWS, {"payment": payment_id, "pending": list(NOT_FINAL_STATUSES)})
    return tuple(row_id for (row_id,) in found)


@dataclass
class Overview:
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # window → provider → status → n
    oldest_unprocessed_seconds: float = 0.0
    dead: int = 0
    failed: int = 0


def overview(session: Session, now: dt.datetime) -> Overview:
    """Counts by provider and status for the last hour and day, via the "receivedAt" index."""
    result = Overview()
    for window, span in (("hour", dt.timedelta(hours=1)), ("day", dt.timedelta(days=1))):
        rows = session.execute(
            select(WebhookEvent.provider, WebhookEvent.status, func.count())
            .where(WebhookEvent.receivedAt >= now - span)
            .group_by(WebhookEvent.provider, WebhookEvent.status)
        ).all()
        by_provider: dict[str, dict[str, int]] = {}
        for provider, status, count in rows:
            by_provider.setdefault(provider, {})[status] = int(count)
        result.counts[window] = by_provider
    pending = session.execute(
        select(func.min(WebhookEvent.receivedAt)).where(WebhookEvent.status.in_(sorted(UNPROCESSED_STATUSES)))
    ).scalar()
    result.oldest_unprocessed_seconds = max(0.0, (now - pending).total_seconds()) if pending else 0.0
    for status in (EventStatus.DEAD, EventStatus.FAILED):
        count = session.execute(select(func.count()).where(WebhookEvent.status == status)).scalar() or 0
        setattr(result, status, int(count))
    return result


@dataclass
class Effects:
    grants: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    subscription_events: list[dict[str, Any]]


_GRANTS = text(
    """SELECT "grantKey", amount, "userId", "createdAt" FROM "CreditGrant" WHERE "sourceEventId" = :row
        ORDER BY "createdAt", "grantKey" """
)
_LEDGER = text(
    """SELECT timestamp, "operationType"::text AS operation, -"creditsUsed" AS credits, "userId", details
         FROM "UsageHistory"
        WHERE details->>'eventId' IN (:row, :event_id) ORDER BY timestamp, id"""
)
_SUBSCRIPTION_EVENTS = text(
    """SELECT "createdAt", "eventType", status, "clerkUserId" FROM "SubscriptionEvent"
        WHERE metadata->>'eventId' = :event_id AND metadata->>'provider' = :provider ORDER BY "createdAt" """
)


def effects(session: Session, event: WebhookEvent) -> Effects:
    """What the event produced: its keyed grants and reversals, ledger rows and subscription log rows."""
    params = {"row": event.id, "event_id": event.eventId, "provider": event.provider}
    return Effects(
        grants=[dict(row._mapping) for row in session.execute(_GRANTS, params)],
        ledger=[dict(row._mapping) for row in session.execute(_LEDGER, params)],
        subscription_events=[dict(row._mapping) for row in session.execute(_SUBSCRIPTION_EVENTS, params)],
    )


def event_types(session: Session) -> list[str]:
    """Event types seen recently, for the filter's suggestions (bounded: the last 10,000 rows)."""
    recent = select(WebhookEvent.eventType).order_by(WebhookEvent.receivedAt.desc()).limit(10_000).subquery()
    return sorted(t for (t,) in session.execute(select(recent.c.eventType).distinct()).all())


_USER_SUBSCRIPTION_EVENTS = text(
    """SELECT "createdAt", "eventType", status, "planKey", metadata->>'provider' AS provider,
              metadata->>'eventId' AS event_id
         FROM "SubscriptionEvent" WHERE "userId" = :user OR "clerkUserId" = :clerk
        ORDER BY "createdAt" DESC LIMIT :limit"""
)


def subscription_events(session: Session, user_id: str, clerk_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """The user's subscription log, newest first."""
    params = {"user": user_id, "clerk": clerk_id, "limit": limit}
    return [dict(row._mapping) for row in session.execute(_USER_SUBSCRIPTION_EVENTS, params)]
