"""Plan periods whose length was not known when they were granted: an Asaas payment that arrived before its
subscription's cycle counts as MONTHLY, and the subscription event that tells the cycle corrects it.

Only the lots still live change (a plan lot and the rollover lot that expires with it); the balance rows are
locked first, in id order, like every other lot writer.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.ledger.lots import Period, plan_expiry

_LOCK = text("SELECT pg_advisory_xact_lock(:ns, :key)")
_SUBSCRIPTION_LOCK_NAMESPACE = 0x63796373  # "cycs": apart from the grant and job locks' key spaces
_MARK = text(
    """UPDATE "CreditLot" SET "provisionalCycleOf" = :subscription
        WHERE "creditBalanceId" = :balance_id AND "grantKey" = :grant_key AND category = 'plan'"""
)
_LOCK_BALANCES = text(
    """SELECT b.id FROM "CreditBalance" b
        WHERE b.id IN (SELECT l."creditBalanceId" FROM "CreditLot" l WHERE l."provisionalCycleOf" = :subscription)
        ORDER BY b.id FOR UPDATE"""
)
_PROVISIONAL = text(
    """SELECT id, "creditBalanceId", "grantKey", "effectiveAt", "createdAt", "expiredAt" IS NULL AND "voidedAt" IS NULL
         FROM "CreditLot" WHERE "provisionalCycleOf" = :subscription ORDER BY id FOR UPDATE"""
)
_SETTLE = text("""UPDATE "CreditLot" SET "provisionalCycleOf" = NULL WHERE id = :id""")
_CORRECT = text(
    """UPDATE "CreditLot" SET "periodEnd" = :period_end, "expiresAt" = :expires_at
        WHERE "creditBalanceId" = :balance_id AND "grantKey" = :grant_key AND category IN ('plan', 'rollover')
          AND "expiredAt" IS NULL AND "voidedAt" IS NULL"""
)


def lock_subscription(session: Session, subscription_id: str) -> None:
    """Serialize a payment's period with its subscription's cycle (taken before any grant or balance lock):
    a payment that read no cycle has marked its lot before the event that stores the cycle corrects lots."""
    key = zlib.crc32(subscription_id.encode()) & 0x7FFFFFFF
    session.execute(_LOCK, {"ns": _SUBSCRIPTION_LOCK_NAMESPACE, "key": key})


def mark_provisional(session: Session, *, balance_id: str, grant_key: str, subscription_id: str) -> None:
    """The plan lot `grant_key` (its balance locked by the grant) counted its period MONTHLY for want of a cycle."""
    params = {"balance_id": balance_id, "grant_key": grant_key, "subscription": subscription_id}
    session.execute(_MARK, params)


def correct_provisional(
    session: Session, *, subscription_id: str, period_end: Callable[[dt.datetime], dt.datetime], grace: int
) -> int:
    """Recompute the provisional periods of `subscription_id` from their start (`period_end(start)`, the cycle
    now known) and the expiry of their live lots, as the grant would have; returns the periods corrected."""
    session.execute(_LOCK_BALANCES, {"subscription": subscription_id})
    corrected = 0
    for lot in session.execute(_PROVISIONAL, {"subscription": subscription_id}).all():
        lot_id, balance_id, grant_key, start, granted_at, live = lot
        session.execute(_SETTLE, {"id": lot_id})
        if not live:
            continue
        end = period_end(start)
        expires_at = plan_expiry(Period(start, end), grace, granted_at)
        session.execute(_CORRECT, {"period_end": end, "expires_at": expires_at, "balance_id": balance_id,
                                   "grant_key": grant_key})  # fmt: skip
        corrected += 1
    return corrected
