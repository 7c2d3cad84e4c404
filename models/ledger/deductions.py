"""The web app's credit deduction for Python callers: the same database functions the web app calls.

`pedro_deduct_credits` and `pedro_refund_credits` (migrations 0006, 0010) hold the whole contract: one conditional
decrement with its `UsageHistory` row, idempotent on the key. Calling them, instead of repeating them in
Python, keeps a single implementation for every caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from models.prisma import OperationType

_DEDUCT = text(
    """SELECT ok, credits_remaining, reason
         FROM pedro_deduct_credits(:clerk_user_id, :amount, CAST(:operation AS "OperationType"), :key,
                                   CAST(:details AS jsonb))"""
)
_REFUND = text("SELECT ok, credits_remaining, reason FROM pedro_refund_credits(:key, :clerk_user_id)")


@dataclass(frozen=True)
class DeductionResult:
    """`reason` is None when ok, else `insufficient_credits`, `unknown_user`, `inactive_user`,
    `invalid_amount`, `invalid_details` (deduction) or `unknown_deduction` (refund)."""

    ok: bool
    credits_remaining: int | None
    reason: str | None


def deduct_credits(
    db: Connection | Session,
    *,
    clerk_user_id: str,
    amount: int,
    operation: OperationType,
    idempotency_key: str,
    details: dict[str, Any] | None = None,
) -> DeductionResult:
    """Take `amount` credits once per key, or nothing; the caller's transaction commits it."""
    row = db.execute(
        _DEDUCT,
        {
            "clerk_user_id": clerk_user_id,
            "amount": amount,
            "operation": OperationType(operation).value,
            "key": idempotency_key,
            "details": None if details is None else json.dumps(details, separators=(",", ":")),
        },
    ).one()
    return DeductionResult(row.ok, row.credits_remaining, row.reason)


def refund_credits(
    db: Connection | Session, *, idempotency_key: str, clerk_user_id: str | None = None
) -> DeductionResult:
    """Give back the deduction made under `idempotency_key`, once (for example after a failed AI call).

    With `clerk_user_id`, only that user's deduction: another user's key is `unknown_deduction`."""
    row = db.execute(_REFUND, {"key": idempotency_key, "clerk_user_id": clerk_user_id}).one()
    return DeductionResult(row.ok, row.credits_remaining, row.reason)
