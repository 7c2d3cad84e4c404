"""Credit lots from Python: the balance statements of pedro-ingest's own writers, each with its lot changes.

The lot rules live once, in the database functions of migration 0011 (`pedro_credit_*`, `pedro_lots_*`),
which the web app's `pedro_deduct_credits` uses too; this module only calls them. Each call locks the
balance row first, then its lots.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import utcnow

_ADD = text(
    """SELECT pedro_credit_add(:user_id, :amount, :grant_key, :category, CAST(:expires_at AS timestamp), :plan_id,
                               CAST(:period_end AS timestamp), CAST(:effective_at AS timestamp))"""
)
_ROLLOVER = text("SELECT carried, regranted, regrant_key FROM pedro_lots_rollover(:balance_id, :grant_key, :cap)")
_OPEN_DEBT = text("SELECT pedro_debt_open(:balance_id, :user_id, :fact_key, :amount)")
_LOCK_BALANCE = text("""SELECT id FROM "CreditBalance" WHERE "userId" = :user_id FOR UPDATE""")
_DEBT_OF = text(
    """SELECT COALESCE(sum(amount - remaining), 0) FROM "CreditDebt"
        WHERE "factKey" = :fact_key AND "cancelledAt" IS NULL"""
)
_CANCEL_DEBT = text(
    """UPDATE "CreditDebt" SET remaining = 0, "cancelledAt" = :now
        WHERE "factKey" = :fact_key AND "cancelledAt" IS NULL"""
)
_EXPIRE = text("SELECT lots, credits FROM pedro_expire_lots(CAST(:due_before AS timestamp), :batch)")
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
    if key.startswith(("asaas:installment:", "asaas:checkout:")):
        return "purchase"  # an installment purchase; a one-off Checkout (a recurrent one grants per payment)
    if key.startswith("asaas:payment:") and not details.get("subscriptionId"):
        return "purchase"
    return "plan"


@dataclass(frozen=True)
class Period:
    """A paid period, in UTC: its lot is effective from `start` and expires at `end` plus the grace."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class LotTerms:
    """How plan lots behave: `grace` seconds after the period end (and after the grant, at least) before they
    expire; at renewal, `rollover` credits of the previous periods' rest move into the new period (None: all);
    what a reversal cannot take becomes a debt unless `forgive`."""

    grace: int = 259200
    rollover: int | None = 0
    forgive: bool = False  # a reversal's shortfall is forgotten instead of owed


def plan_expiry(period: Period, grace: int, now: dt.datetime) -> dt.datetime:
    """Never sooner than a grace after the grant: a period paid late is still usable."""
    return max(period.end, now) + dt.timedelta(seconds=grace)


def add(
    session: Session,
    *,
    user_id: str,
    amount: int,
    grant_key: str | None,
    category: str,
    expires_at: dt.datetime | None = None,
    plan_id: str | None = None,
    period: Period | None = None,
) -> str:
    """Add `amount` credits as a new lot; returns the balance id."""
    params = {"user_id": user_id, "amount": amount, "grant_key": grant_key, "category": category}
    params.update(
        expires_at=expires_at,
        plan_id=plan_id,
        period_end=period.end if period else None,
        effective_at=period.start if period else None,
    )
    return str(session.execute(_ADD, params).scalar_one())


@dataclass(frozen=True)
class Rollover:
    carried: int  # moved from older plan lots into the new period's rollover lot (no balance change)
    regranted: int  # a late renewal's share of an already expired lot, granted again (a balance change)
    regrant_key: str | None


def rollover(session: Session, *, balance_id: str, grant_key: str, cap: int | None) -> Rollover:
    """At renewal (the plan lot `grant_key` was just made): carry up to `cap` (None: all) of the older periods' rest."""
    row = session.execute(_ROLLOVER, {"balance_id": balance_id, "grant_key": grant_key, "cap": cap}).one()
    return Rollover(int(row.carried), int(row.regranted), row.regrant_key)


def expire_due(session: Session, *, due_before: dt.datetime, batch: int) -> tuple[int, int]:
    """Expire up to `batch` lots due by `due_before` (balances locked first); returns (lots, credits)."""
    lots, credits = session.execute(_EXPIRE, {"due_before": due_before, "batch": batch}).one()
    return int(lots), int(credits)


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


def open_debt(session: Session, *, balance_id: str, user_id: str, fact_key: str, amount: int) -> None:
    """Owe `amount` credits for the reversal `fact_key` (the balance is 0): later credits repay it first."""
    params = {"balance_id": balance_id, "user_id": user_id, "fact_key": fact_key, "amount": amount}
    session.execute(_OPEN_DEBT, params)


def cancel_debt(session: Session, *, user_id: str, fact_key: str) -> int:
    """Cancel what is still owed for `fact_key`; returns what was already repaid. The balance is locked first:
    every debt writer holds it, so the debt rows need no lock of their own."""
    session.execute(_LOCK_BALANCE, {"user_id": user_id})
    repaid = int(session.execute(_DEBT_OF, {"fact_key": fact_key}).scalar_one())
    session.execute(_CANCEL_DEBT, {"fact_key": fact_key, "now": utcnow()})
    return repaid
