"""The credit ledger: every balance change goes through here, with its `UsageHistory` row.

Invariant kept by this module: `CreditBalance.creditsRemaining` == sum of `-creditsUsed` over the
balance's ledger rows (plus an opening balance for balances that predate pedro-ingest). Balance changes
are atomic SQL, never read-modify-write; each credit fact carries a unique `CreditGrant.grantKey`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow
from models.prisma import OperationType

_CLAIM_KEY = text(
    """
    INSERT INTO "CreditGrant" (id, "grantKey", "userId", "planId", amount, "sourceEventId", "createdAt")
    VALUES (:id, :key, :user_id, :plan_id, :amount, :source_event_id, :now)
    ON CONFLICT ("grantKey") DO NOTHING
    RETURNING id
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
_LEDGER_ROW = text(
    """
    INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp)
    VALUES (:id, :user_id, :balance_id, CAST(:operation AS "OperationType"), :credits_used,
            CAST(:details AS jsonb), :now)
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


def open_balance_with_signup_grant(
    session: Session, *, user_id: str, clerk_id: str, amount: int, source_event_id: str | None
) -> bool:
    """Create the user's balance holding the signup grant, once. False when a balance already existed.

    A balance the web app created on its own (Prisma's default of 100, no ledger row) is left as it is:
    granting again would double the credits; reconciliation records its opening balance instead.
    """
    now = utcnow()
    balance_id = session.execute(
        _OPEN_BALANCE,
        {"id": new_id(), "user_id": user_id, "clerk_id": clerk_id, "amount": amount, "now": now},
    ).scalar_one_or_none()
    if balance_id is None:
        return False
    key = f"clerk:signup:{clerk_id}"
    session.execute(
        _CLAIM_KEY,
        {
            "id": new_id(),
            "key": key,
            "user_id": user_id,
            "plan_id": None,
            "amount": amount,
            "source_event_id": source_event_id,
            "now": now,
        },
    )
    write_ledger_row(
        session,
        user_id=user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=amount,
        details={"kind": "signup", "grantKey": key, "provider": "clerk", "eventId": source_event_id},
    )
    return True
