"""Ledger rows and empty balances; the balance changes themselves (with their lots) are in `lots`.

`creditsUsed = -added`, as the schema's comment says (negative `creditsUsed` adds credits).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow
from models.prisma import OperationType

_LEDGER_ROW = text(
    """
    INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp)
    VALUES (:id, :user_id, :balance_id, CAST(:operation AS "OperationType"), :credits_used,
            CAST(:details AS jsonb), :now)
    """
)


_OPEN_BALANCE = text(
    """
    INSERT INTO "CreditBalance"
        (id, "userId", "clerkUserId", "creditsRemaining", "lastSyncedAt", "createdAt", "updatedAt")
    VALUES (:id, :user_id, :clerk_id, :amount, :now, :now, :now)
    ON CONFLICT ("userId") DO NOTHING
    RETURNING id
    """
)


def write_ledger_row(
    session: Session,
    *,
    user_id: str,
    balance_id: str,
    operation: OperationType,
    added: int,
    details: dict[str, Any],
) -> None:
    """`added` credits (negative to remove) as a ledger row: `creditsUsed = -added`, per the schema."""
    session.execute(
        _LEDGER_ROW,
        {
            "id": new_id(),
            "user_id": user_id,
            "balance_id": balance_id,
            "operation": operation.value,
            "credits_used": -added,
            "details": json.dumps(details, separators=(",", ":")),
            "now": utcnow(),
        },
    )


def open_balance(session: Session, *, user_id: str, clerk_id: str, amount: int = 0) -> str | None:
    """The user's balance holding `amount`, created unless one exists: its id, or None when it existed (the
    existing balance is left as it is)."""
    values = {"id": new_id(), "user_id": user_id, "clerk_id": clerk_id, "amount": amount, "now": utcnow()}
    return session.execute(_OPEN_BALANCE, values).scalar_one_or_none()


def ensure_balance(session: Session, *, user_id: str, clerk_id: str) -> None:
    """A user first seen through billing gets an empty balance (the signup grant is Clerk's, not ours)."""
    open_balance(session, user_id=user_id, clerk_id=clerk_id)
