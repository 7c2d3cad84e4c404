"""Credit facts keyed once: plan grants, the signup grant and reversals of a grant.

Each credit fact claims a unique `CreditGrant.grantKey` in the transaction that changes the balance, so a
second delivery of the same fact is a no-op, whatever event carries it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow
from models.ledger import lots, periods
from models.ledger.balances import ensure_balance, open_balance, write_ledger_row
from models.ledger.facts import CreditFact
from models.prisma import OperationType

REVERSAL_SUFFIX = ":reversal"
_CLAIM_KEY = text(
    """
    INSERT INTO "CreditGrant" (id, "grantKey", "userId", "planId", amount, "sourceEventId", "createdAt")
    VALUES (:id, :key, :user_id, :plan_id, :amount, :source_event_id, :now)
    ON CONFLICT ("grantKey") DO NOTHING
    RETURNING id
    """
)
_LOCK_GRANT = text("""SELECT amount FROM "CreditGrant" WHERE "grantKey" = :key FOR UPDATE""")
_REVERSED_SO_FAR = text("""SELECT COALESCE(-SUM(amount), 0) FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix""")
_PENDING = text(
    """SELECT "grantKey", -amount FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix AND amount < 0
        ORDER BY "createdAt", "grantKey" """
)
_LOCK_CHARGE = text("SELECT pg_advisory_xact_lock(:ns, :key)")
_GRANT_LOCK_NAMESPACE = 0x6772616E  # "gran": apart from the job locks' key space
SET_AMOUNT_SQL = text("""UPDATE "CreditGrant" SET amount = :amount WHERE id = :id""")


def lock_grant(session: Session, grant_key: str) -> None:
    """Serialize everything that touches one grant and its reversals (taken before its `CreditGrant` rows):
    a reversal recorded as pending and the grant that applies pending reversals must not interleave."""
    session.execute(_LOCK_CHARGE, {"ns": _GRANT_LOCK_NAMESPACE, "key": zlib.crc32(grant_key.encode()) & 0x7FFFFFFF})


@dataclass(frozen=True)
class CreditChange:
    """What a grant or reversal did. `applied` is False when its key was already used (a duplicate fact)."""

    applied: bool
    added: int = 0
    shortfall: int = 0
    before_grant: bool = False


def claim_key(
    session: Session, key: str, user_id: str, plan_id: str | None, amount: int, source_event_id: str | None
) -> str | None:
    return session.execute(
        _CLAIM_KEY,
        {
            "id": new_id(),
            "key": key,
            "user_id": user_id,
            "plan_id": plan_id,
            "amount": amount,
            "source_event_id": source_event_id,
            "now": utcnow(),
        },
    ).scalar_one_or_none()


_CLAIMED = text("""SELECT count(*) FROM "CreditGrant" WHERE "grantKey" = :key""")


def is_claimed(session: Session, key: str) -> bool:
    """Whether a credit fact holds `key` (a grant, a reversal, a tombstone)."""
    return bool(session.execute(_CLAIMED, {"key": key}).scalar_one())


def record_without_effect(session: Session, fact: CreditFact, *, key: str) -> CreditChange:
    """Claim `key` with amount 0: the fact is on record (duplicates are no-ops) but changes nothing, because
    an earlier event already cancelled it (a restore before its deletion, a dispute won before its chargeback)."""
    ensure_balance(session, user_id=fact.user_id, clerk_id=fact.clerk_id)
    return CreditChange(applied=claim_key(session, key, fact.user_id, None, 0, fact.source_event_id) is not None)


def open_balance_with_signup_grant(session: Session, fact: CreditFact, *, amount: int) -> bool:
    """Create the user's balance holding the signup grant, once. False when a balance already existed.

    A balance the web app created on its own (Prisma's default of 100, no ledger row) is left as it is:
    granting again would double the credits; reconciliation records its opening balance instead.
    """
    user_id = fact.user_id
    balance_id = open_balance(session, user_id=user_id, clerk_id=fact.clerk_id, amount=amount)
    if balance_id is None:
        return False
    key = f"clerk:signup:{fact.clerk_id}"
    lots.open_lot(session, balance_id=balance_id, user_id=user_id, grant_key=key, category="signup", amount=amount)
    claim_key(session, key, user_id, None, amount, fact.source_event_id)
    write_ledger_row(
        session,
        user_id=user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=amount,
        details={"kind": "signup", "grantKey": key, "provider": "clerk", "eventId": fact.source_event_id},
    )
    return True


def grant_once(
    session: Session,
    fact: CreditFact,
    *,
    key: str,
    plan_id: str | None,
    amount: int,
    terms: lots.LotTerms | None = None,
    period: lots.Period | None = None,
) -> CreditChange:
    """Grant a paid period's credits once per `key`, as a lot of its own, in the caller's transaction.

    A trial's lot expires with its trial period (`period`), else never. A plan period's lot (`period` given)
    expires at its end plus `terms.grace` and takes over up to
    `terms.rollover` of the older periods' rest (the rest expires with them). The key row's `amount` is
    what was added (the reversal reverses that). A key already claimed — by an earlier grant, or by a full
    reversal that arrived first — makes this a no-op. Reversals recorded before the grant without taking
    its key (partial refunds, chargebacks, installments' shares) are pending: each is applied now, as its
    own ledger row, so the net is exactly the grant minus them.
    """
    lock_grant(session, key)
    ensure_balance(session, user_id=fact.user_id, clerk_id=fact.clerk_id)
    grant_id = claim_key(session, key, fact.user_id, plan_id, amount, fact.source_event_id)
    if grant_id is None:
        return CreditChange(applied=False)
    terms = terms or lots.LotTerms()
    category = lots.grant_category(key, fact.details)
    plan_period = period if category == "plan" else None
    dated = period if category in ("plan", "trial") else None
    expires_at = lots.lot_expiry(category, dated, terms.grace, utcnow())
    balance_id = lots.add(session, user_id=fact.user_id, amount=amount, grant_key=key, category=category,
                          expires_at=expires_at, plan_id=plan_id, period=dated)  # fmt: skip
    write_ledger_row(
        session,
        user_id=fact.user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=amount,
        details={**fact.details, "grantKey": key, "planCredits": amount, "lotCategory": category},
    )
    if plan_period and plan_period.provisional_of:
        periods.mark_provisional(session, balance_id=balance_id, grant_key=key,
                                 subscription_id=plan_period.provisional_of)  # fmt: skip
    if plan_period:
        _renew(session, fact.user_id, balance_id, key, terms, fact.details)
    removed = _apply_pending(session, key, fact.user_id, amount, fact.details)
    return CreditChange(applied=True, added=amount - removed)


def _renew(
    session: Session, user_id: str, balance_id: str, key: str, terms: lots.LotTerms, details: dict[str, Any]
) -> None:
    """Carry the older periods' rest into this one; a late renewal's regrant is its own ledger row."""
    moved = lots.rollover(session, balance_id=balance_id, grant_key=key, cap=terms.rollover)
    if moved.regranted:
        write_ledger_row(session, user_id=user_id, balance_id=balance_id, operation=OperationType.CREDIT_GRANT,
                         added=moved.regranted, details={**details, "kind": "rollover_regrant", "grantKey": key,
                                                          "regrantKey": moved.regrant_key})  # fmt: skip


def _apply_pending(session: Session, key: str, user_id: str, added: int, details: dict[str, Any]) -> int:
    """Apply the reversals that arrived before the grant `key`, at most what the grant added."""
    prefix = key + REVERSAL_SUFFIX
    total = 0
    for reversal_key, intended in session.execute(_PENDING, {"n": len(prefix), "prefix": prefix}).all():
        amount = min(intended, added - total)
        if amount <= 0:
            break
        total += _remove(session, user_id, amount, {**details, "kind": "plan_reversal", "beforeGrant": True},
                         key, reversal_key)  # fmt: skip
    return total


def _remove(
    session: Session,
    user_id: str,
    intended: int,
    details: dict[str, Any],
    grant_key: str,
    key: str,
    terms: lots.LotTerms | None = None,
) -> int:
    """Remove up to `intended` credits (never below zero) with its ledger row; the rest becomes a debt unless
    `terms.forgive`. Returns what was removed."""
    balance_id, removed = lots.remove(session, user_id=user_id, amount=intended, fact_key=key, first_grant=grant_key)
    if intended > removed and not (terms and terms.forgive):
        lots.open_debt(session, balance_id=balance_id, user_id=user_id, fact_key=key, amount=intended - removed)
    write_ledger_row(
        session,
        user_id=user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_REVERSAL,
        added=-removed,
        details={
            **details,
            "grantKey": grant_key,
            "reversalKey": key,
            "intended": intended,
            "reversed": removed,
            "shortfall": intended - removed,
        },
    )
    return int(removed)


def reverse_once(
    session: Session,
    fact: CreditFact,
    *,
    grant_key: str,
    reversal_key: str,
    fraction: Fraction,
    charge_prefix: str | None = None,
    pending_base: int | None = None,
    terms: lots.LotTerms | None = None,
) -> CreditChange:
    """Reverse `fraction` of the grant under `grant_key` for one charge (cumulatively), once per `reversal_key`.

    - `charge_prefix` (default: the grant's reversal prefix) groups the reversals of one charge: an
      installment's refunds and chargebacks reverse its share of the purchase's single grant.
    - No grant yet (out-of-order delivery): with `pending_base` None the grant key is claimed with amount
      0, so the grant that arrives later is a no-op (a full refund: no net credits). With `pending_base`
      (the plan's credits) the reversal is recorded as pending, computed against it, and applied by the
      grant when it comes (a partial refund or one installment's share reverses exactly that).
    - Cumulative: the target is `floor(granted × fraction)` (rounded down, in the user's favour); only what
      earlier reversals of this charge did not cover is removed, and never more than the grant has left.
    - The balance never goes below zero: the ledger row records what was really removed, and the `shortfall`
      (intended − removed) in its details; the shortfall is owed (a debt) unless `terms.forgive`. The reversal
      key's `amount` is minus the intended reversal, so a later partial refund does not try to remove the
      shortfall again.
    All reversals of one grant are serialized by a lock on its key row.
    """
    lock_grant(session, grant_key)
    ensure_balance(session, user_id=fact.user_id, clerk_id=fact.clerk_id)
    everything = grant_key + REVERSAL_SUFFIX
    charge_prefix = charge_prefix or everything
    granted = session.execute(_LOCK_GRANT, {"key": grant_key}).scalar_one_or_none()
    if granted is None and pending_base is None:
        if claim_key(session, grant_key, fact.user_id, None, 0, fact.source_event_id) is not None:
            claimed = claim_key(session, reversal_key, fact.user_id, None, 0, fact.source_event_id)
            return CreditChange(applied=claimed is not None, before_grant=True)
        granted = session.execute(_LOCK_GRANT, {"key": grant_key}).scalar_one()
    pending = granted is None
    granted = max((pending_base if pending else granted) or 0, 0)  # pending: pending_base is set (above)
    already = session.execute(_REVERSED_SO_FAR, {"n": len(charge_prefix), "prefix": charge_prefix}).scalar_one()
    left = granted - session.execute(_REVERSED_SO_FAR, {"n": len(everything), "prefix": everything}).scalar_one()
    target = granted if fraction >= 1 else math.floor(granted * max(fraction, Fraction(0)))
    intended = max(0, min(target - already, left))
    if claim_key(session, reversal_key, fact.user_id, None, -intended, fact.source_event_id) is None:
        return CreditChange(applied=False)
    if intended == 0 or pending:
        return CreditChange(applied=True, before_grant=pending)
    removed = _remove(session, fact.user_id, intended, fact.details, grant_key, reversal_key, terms)
    return CreditChange(applied=True, added=-removed, shortfall=intended - removed)
