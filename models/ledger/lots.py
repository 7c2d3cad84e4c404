"""Credit lots from Python: the balance statements of pedro-ingest's own writers, each with its lot changes.

The lot rules live once, in the database functions of migration 0011 (`pedro_credit_*`, `pedro_lots_*`),
which the web app's `pedro_deduct_credits` uses too; this module only calls them. Each call locks the
balance row first, then its lots.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_ADD = text(
    "SELECT pedro_credit_add(:user_id, :amount, :grant_key, :category, CAST(:expires_at AS timestamp), :plan_id)"
)
_RESET = text(
    """SELECT balance_id, added
         FROM pedro_credit_reset(:user_id, :amount, :grant_key, :category, CAST(:expires_at AS timestamp), :plan_id)"""
)
_REMOVE = text("SELECT balance_id, removed FROM pedro_credit_remove(:user_id, :amount, :fact_key, :first_grant)")
_RETURN = text("SELECT pedro_credit_return(:user_id, :amount, :fact_key, :grant_key)")
_NEW_LOT = text(
    """SELECT pedro_lot_insert(:balance_id, :user_id, :grant_key, :category, :amount, :amount,
                               CAST(NULL AS timestamp), NULL, CAST(NULL AS timestamp))"""
)
CATEGORIES = ("signup", "plan", "rollover", "purchase", "trial", "adjustment", "opening")


def grant_category(key: str, details: dict[str, Any]) -> str:
    """The lot category of a grant, from pedro-ingest's own key shapes (and its own handler's details)."""
    if key.startswith("clerk:trial:"):
        return "trial"
    if key.startswith("clerk:signup:"):
        return "signup"
    if key.startswith("asaas:installment:") or (key.startswith("asaas:payment:") and not details.get("subscriptionId")):
        return "purchase"
    return "plan"


def add(
    session: Session,
    *,
    user_id: str,
    amount: int,
    grant_key: str | None,
    category: str,
    expires_at: dt.datetime | None = None,
    plan_id: str | None = None,
) -> str:
    """Add `amount` credits as a new lot; returns the balance id."""
    params = {"user_id": user_id, "amount": amount, "grant_key": grant_key, "category": category}
    return str(session.execute(_ADD, {**params, "expires_at": expires_at, "plan_id": plan_id}).scalar_one())


def reset(
    session: Session, *, user_id: str, amount: int, grant_key: str, category: str, plan_id: str | None = None
) -> tuple[str, int]:
    """Void every live lot and make `amount` the one lot left; returns (balance id, credits added)."""
    params = {"user_id": user_id, "amount": amount, "grant_key": grant_key, "category": category}
    balance_id, added = session.execute(_RESET, {**params, "expires_at": None, "plan_id": plan_id}).one()
    return str(balance_id), int(added)


def remove(session: Session, *, user_id: str, amount: int, fact_key: str, first_grant: str | None) -> tuple[str, int]:
    """Remove up to `amount` (never below zero), `first_grant`'s lot first; returns (balance id, removed)."""
    balance_id, removed = session.execute(
        _REMOVE, {"user_id": user_id, "amount": amount, "fact_key": fact_key, "first_grant": first_grant}
    ).one()
    return str(balance_id), int(removed)


def give_back(session: Session, *, user_id: str, amount: int, fact_key: str | None, grant_key: str | None) -> str:
    """Add `amount` back to the lots `fact_key` took from, the rest to `grant_key`'s lot; returns the balance id."""
    params = {"user_id": user_id, "amount": amount, "fact_key": fact_key, "grant_key": grant_key}
    return str(session.execute(_RETURN, params).scalar_one())


def open_lot(session: Session, *, balance_id: str, user_id: str, grant_key: str, category: str, amount: int) -> None:
    """The first lot of a balance this transaction has just created (and so holds locked)."""
    params = {"balance_id": balance_id, "user_id": user_id, "grant_key": grant_key, "category": category}
    session.execute(_NEW_LOT, {**params, "amount": amount})
