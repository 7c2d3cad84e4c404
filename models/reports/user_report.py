"""Everything pedro-ingest knows about one user, as plain data: "why didn't this user get credits?".

The user, its balance and whether the ledger explains it, its ledger rows with their keys, and every inbox
event that touched it or failed to (with a readable reason and whether a replay can help). The CLI's
`user` command and `send-sample` print it; an operator console can render the same dataclasses.

Events are found through their effects (grant keys, ledger rows, subscription log) and, for events that
had none (failed ones), through the user's ids in their payloads: a scan of the inbox, fine for one
operator question, not for a hot path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.ledger.pricing import LotView, credit_lots
from models.status import REPLAYABLE_STATUSES, reason_of

LEDGER_KINDS = {"CREDIT_GRANT": "grant", "CREDIT_REVERSAL": "reversal", "CREDIT_ADJUSTMENT": "adjustment",
                "CREDIT_EXPIRY": "expiry"}  # fmt: skip


@dataclass(frozen=True)
class UserSummary:
    id: str
    clerk_id: str
    email: str | None
    name: str | None
    active: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class LedgerEntry:
    at: dt.datetime
    kind: str  # grant, reversal, adjustment, deduction
    operation: str
    credits: int  # signed change of the balance: +added, -removed
    key: str | None  # grantKey / reversalKey / restoreKey, when pedro-ingest wrote it
    detail: str | None  # details.kind (signup, plan_grant, opening_balance, drift_correction…)
    event_id: str | None


@dataclass(frozen=True)
class InboxEntry:
    row_id: str
    provider: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    received_at: dt.datetime
    error: str | None
    error_detail: str | None

    @property
    def reason(self) -> str | None:
        return reason_of(self.error)

    @property
    def replayable(self) -> bool:
        return self.status in REPLAYABLE_STATUSES


@dataclass(frozen=True)
class UserReport:
    user: UserSummary
    balance: int | None  # None: no CreditBalance row
    ledger_total: int  # sum of the ledger's changes
    ledger: list[LedgerEntry]
    events: list[InboxEntry]
    lots: list[LotView] = field(default_factory=list)  # live lots holding credits, then a `debt` row if owed

    @property
    def lot_total(self) -> int:
        return sum(lot.remaining for lot in self.lots if lot.category != "debt")

    @property
    def reconciles(self) -> bool:
        return self.balance is not None and self.balance == self.ledger_total

    @property
    def lots_agree(self) -> bool:
        """Σ live lots == balance (a balance changed behind the functions has its lots settled by reconcile)."""
        return self.lot_total == max(self.balance or 0, 0)


@dataclass(frozen=True)
class EventOutcome:
    event: InboxEntry
    clerk_id: str | None
    credits: int  # net ledger change this event made for the user
    balance: int | None


_USER_COLUMNS = 'SELECT id, "clerkId", email, name, "isActive", "createdAt" FROM "User" '
_FIND_BY = (
    text(_USER_COLUMNS + 'WHERE "clerkId" = :ref'),
    text(_USER_COLUMNS + 'WHERE lower(email) = lower(:ref) ORDER BY "createdAt" LIMIT 1'),
    text(_USER_COLUMNS + "WHERE id = :ref"),
    text(
        _USER_COLUMNS
        + """WHERE id = (SELECT "userId" FROM "CreditGrant"
                                       WHERE "grantKey" = 'asaas:payment:' || :ref)"""
    ),
    text(
        _USER_COLUMNS
        + """WHERE "clerkId" = split_part((SELECT payload->'payment'->>'externalReference'
           FROM "WebhookEvent" WHERE provider IN ('asaas', 'asaas-sync') AND payload->'payment'->>'id' = :ref
          ORDER BY "receivedAt" DESC LIMIT 1), '|', 1)"""
    ),
    text(  # an Asaas Checkout id, or a payment of one (its reference is on the checkout)
        _USER_COLUMNS
        + """WHERE id = (SELECT "userId" FROM "AsaasCheckoutLink" WHERE "asaasCheckoutId" = COALESCE(
           (SELECT payload->'payment'->>'checkoutSession' FROM "WebhookEvent"
             WHERE provider = 'asaas' AND payload->'payment'->>'id' = :ref ORDER BY "receivedAt" DESC LIMIT 1),
           :ref))"""
    ),
)
_BALANCE = text('SELECT "creditsRemaining" FROM "CreditBalance" WHERE "userId" = :user')
_LEDGER = text(
    """SELECT timestamp, "operationType"::text AS operation, -"creditsUsed" AS credits, details
         FROM "UsageHistory" WHERE "userId" = :user ORDER BY timestamp, id"""
)
_EVENT_COLUMNS = """SELECT id, provider, "eventId", "eventType", status, attempts, "receivedAt", "lastError",
                           "lastErrorDetail" FROM "WebhookEvent" """
_EVENTS = text(
    _EVENT_COLUMNS
    + """
    WHERE id IN (SELECT "sourceEventId" FROM "CreditGrant" WHERE "userId" = :user)
       OR id IN (SELECT details->>'eventId' FROM "UsageHistory" WHERE "userId" = :user)
       OR (provider, "eventId") IN (SELECT metadata->>'provider', metadata->>'eventId' FROM "SubscriptionEvent"
                                     WHERE "clerkUserId" = :clerk OR "userId" = :user)
       OR (provider, "eventId") IN (SELECT details->>'provider', details->>'eventId' FROM "UsageHistory"
                                     WHERE "userId" = :user)
       OR (provider = 'clerk' AND (payload->'data'->>'id' = :clerk
                                   OR payload->'data'->'payer'->>'user_id' = :clerk))
       OR (provider IN ('asaas', 'asaas-sync')
           AND (split_part(payload->'payment'->>'externalReference', '|', 1) IN (:clerk, :user)
                                   OR split_part(payload->'subscription'->>'externalReference', '|', 1)
                                      IN (:clerk, :user)
                                   OR payload->'payment'->>'id' IN (
                                      SELECT split_part("grantKey", ':', 3) FROM "CreditGrant"
                                       WHERE "userId" = :user AND "grantKey" LIKE 'asaas:payment:%')))
    ORDER BY "receivedAt", id
    LIMIT :limit
    """
)
_ONE_EVENT = text(_EVENT_COLUMNS + "WHERE id = :id")
_EVENT_USER = text(
    """SELECT u.id, u."clerkId" FROM "User" u WHERE u.id = (SELECT "userId" FROM "CreditGrant"
        WHERE "sourceEventId" = :row LIMIT 1)
       OR u."clerkId" = (SELECT COALESCE(payload->'data'->>'id', split_part(payload->'payment'->>'externalReference',
                           '|', 1)) FROM "WebhookEvent" WHERE id = :row)
       LIMIT 1"""
)
_EVENT_CREDITS = text(
    """SELECT COALESCE(sum(-"creditsUsed"), 0) FROM "UsageHistory"
        WHERE "userId" = :user AND (details->>'eventId' = :row OR details->>'eventId' = :event_id)"""
)


def find_user(session: Session, ref: str) -> UserSummary | None:
    """By Clerk id, e-mail, `User.id`, an Asaas payment id (granted, or named by an inbox event), or an Asaas
    Checkout id."""
    for query in _FIND_BY:
        row = session.execute(query, {"ref": ref.strip()}).first()
        if row is not None:
            return UserSummary(*row)
    return None


def user_report(session: Session, ref: str, *, event_limit: int = 500) -> UserReport | None:
    user = find_user(session, ref)
    if user is None:
        return None
    balance = session.execute(_BALANCE, {"user": user.id}).scalar()
    ledger = [_ledger_entry(row) for row in session.execute(_LEDGER, {"user": user.id})]
    return UserReport(
        user=user,
        balance=balance,
        ledger_total=sum(entry.credits for entry in ledger),
        ledger=ledger,
        events=events_of(session, user, limit=event_limit),
        lots=credit_lots(session, user.clerk_id),
    )


def events_of(session: Session, user: UserSummary, *, limit: int = 500) -> list[InboxEntry]:
    """Inbox events that touched the user or name it, oldest first."""
    rows = session.execute(_EVENTS, {"user": user.id, "clerk": user.clerk_id, "limit": limit})
    return [InboxEntry(*row) for row in rows]


def event_outcome(session: Session, row_id: str) -> EventOutcome | None:
    """One event's status and what it did for its user (credits, balance now)."""
    row = session.execute(_ONE_EVENT, {"id": row_id}).first()
    if row is None:
        return None
    event = InboxEntry(*row)
    user = session.execute(_EVENT_USER, {"row": row_id}).first()
    if user is None:
        return EventOutcome(event, None, 0, None)
    credits = session.execute(_EVENT_CREDITS, {"user": user.id, "row": row_id, "event_id": event.event_id}).scalar()
    balance = session.execute(_BALANCE, {"user": user.id}).scalar()
    return EventOutcome(event, user.clerkId, int(credits or 0), balance)


def _ledger_entry(row: Any) -> LedgerEntry:
    details = row.details if isinstance(row.details, dict) else {}
    key = details.get("reversalKey") or details.get("restoreKey") or details.get("grantKey")
    return LedgerEntry(
        at=row.timestamp,
        kind=LEDGER_KINDS.get(row.operation, "deduction"),
        operation=row.operation,
        credits=int(row.credits),
        key=key,
        detail=details.get("kind"),
        event_id=details.get("eventId"),
    )
