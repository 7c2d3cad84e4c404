"""Priced operations, the current plan and the lot view, for Python callers: the web app's database functions.

`pedro_charge_operation`, `pedro_current_plan` and `pedro_credit_lots` (migration 0013) hold the rules; the
console, the CLI and tests call them here so there is one implementation.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from models.prisma import OperationType

_CHARGE = text(
    """SELECT ok, credits_remaining, cost, reason
         FROM pedro_charge_operation(:clerk_user_id, CAST(:operation AS "OperationType"), :key, :quantity,
                                     CAST(:details AS jsonb))"""
)
_PLAN = text("SELECT plan_id, period_end, status FROM pedro_current_plan(:clerk_user_id)")
_LOTS = text("SELECT category, remaining, expires_at, plan_id FROM pedro_credit_lots(:clerk_user_id)")


@dataclass(frozen=True)
class ChargeResult:
    """`cost` is known (not None) whenever the price was found; `reason` None when ok, else `invalid_amount`,
    `invalid_details`, `unknown_user`, `inactive_user`, `unpriced_operation` or `insufficient_credits`."""

    ok: bool
    credits_remaining: int | None
    cost: int | None
    reason: str | None


@dataclass(frozen=True)
class CurrentPlan:
    plan_id: str
    period_end: dt.datetime | None
    status: str  # active | past_due | canceled


@dataclass(frozen=True)
class LotView:
    category: str  # signup, plan, rollover, purchase, trial, adjustment, opening; `debt` (negative) when owed
    remaining: int
    expires_at: dt.datetime | None
    plan_id: str | None


def charge_operation(
    db: Connection | Session,
    *,
    clerk_user_id: str,
    operation: OperationType,
    idempotency_key: str,
    quantity: int = 1,
    details: dict[str, Any] | None = None,
) -> ChargeResult:
    """Charge the priced cost of `quantity` operations once per key, or nothing; the caller commits."""
    row = db.execute(
        _CHARGE,
        {
            "clerk_user_id": clerk_user_id,
            "operation": OperationType(operation).value,
            "key": idempotency_key,
            "quantity": quantity,
            "details": None if details is None else json.dumps(details, separators=(",", ":")),
        },
    ).one()
    return ChargeResult(row.ok, row.credits_remaining, row.cost, row.reason)


def current_plan(db: Connection | Session, clerk_user_id: str) -> CurrentPlan | None:
    row = db.execute(_PLAN, {"clerk_user_id": clerk_user_id}).one_or_none()
    return None if row is None else CurrentPlan(row.plan_id, row.period_end, row.status)


def credit_lots(db: Connection | Session, clerk_user_id: str) -> list[LotView]:
    rows = db.execute(_LOTS, {"clerk_user_id": clerk_user_id}).all()
    return [LotView(r.category, r.remaining, r.expires_at, r.plan_id) for r in rows]
