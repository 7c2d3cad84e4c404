"""The credit ledger: every balance change goes through here, with its `UsageHistory` row.

Invariant kept by this module: `CreditBalance.creditsRemaining` == sum of `-creditsUsed` over the
balance's ledger rows (plus an opening balance for balances that predate pedro-ingest). Balance changes
are atomic SQL, never read-modify-write; each credit fact carries a unique `CreditGrant.grantKey`.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from fractions import Fraction
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


# ---- plan grants and their reversals --------------------------------------------------------------------

REVERSAL_SUFFIX = ":reversal"
_ENSURE_BALANCE = text(
    """
    INSERT INTO "CreditBalance"
        (id, "userId", "clerkUserId", "creditsRemaining", "lastSyncedAt", "createdAt", "updatedAt")
    VALUES (:id, :user_id, :clerk_id, 0, :now, :now, :now)
    ON CONFLICT ("userId") DO NOTHING
    """
)
_ADD = text(
    """UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + :amount, "updatedAt" = :now
       WHERE "userId" = :user_id RETURNING id"""
)
# Reset and capped removal need the value before the change: the CTE locks the row, so `before` is the
# current value and the UPDATE is one atomic statement (no read-modify-write across statements).
_RESET = text(
    """
    WITH old AS (SELECT id, "creditsRemaining" AS before FROM "CreditBalance" WHERE "userId" = :user_id FOR UPDATE)
    UPDATE "CreditBalance" b SET "creditsRemaining" = :amount, "updatedAt" = :now
      FROM old WHERE b.id = old.id
    RETURNING b.id, :amount - old.before AS added
    """
)
_REMOVE_CAPPED = text(
    """
    WITH old AS (SELECT id, "creditsRemaining" AS before FROM "CreditBalance" WHERE "userId" = :user_id FOR UPDATE)
    UPDATE "CreditBalance" b
       SET "creditsRemaining" = old.before - LEAST(GREATEST(old.before, 0), :amount), "updatedAt" = :now
      FROM old WHERE b.id = old.id
    RETURNING b.id, LEAST(GREATEST(old.before, 0), :amount) AS removed
    """
)
_LOCK_GRANT = text("""SELECT amount FROM "CreditGrant" WHERE "grantKey" = :key FOR UPDATE""")
_REVERSED_SO_FAR = text("""SELECT COALESCE(-SUM(amount), 0) FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix""")
_SET_AMOUNT = text("""UPDATE "CreditGrant" SET amount = :amount WHERE id = :id""")


@dataclass(frozen=True)
class CreditChange:
    """What a grant or reversal did. `applied` is False when its key was already used (a duplicate fact)."""

    applied: bool
    added: int = 0
    shortfall: int = 0
    before_grant: bool = False


def _claim(
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


def ensure_balance(session: Session, *, user_id: str, clerk_id: str) -> None:
    """A user first seen through billing gets an empty balance (the signup grant is Clerk's, not ours)."""
    session.execute(_ENSURE_BALANCE, {"id": new_id(), "user_id": user_id, "clerk_id": clerk_id, "now": utcnow()})


def grant_once(
    session: Session,
    *,
    key: str,
    user_id: str,
    clerk_id: str,
    plan_id: str | None,
    amount: int,
    policy: str,
    source_event_id: str | None,
    details: dict[str, Any],
) -> CreditChange:
    """Grant a paid period's credits once per `key`, in the caller's transaction.

    `policy` `add` adds `amount`; `reset` sets the balance to `amount` and records the difference. The key
    row's `amount` is what was really added (the reversal reverses that). A key already claimed — by an
    earlier grant, or by a reversal that arrived first — makes this a no-op.
    """
    ensure_balance(session, user_id=user_id, clerk_id=clerk_id)
    grant_id = _claim(session, key, user_id, plan_id, amount, source_event_id)
    if grant_id is None:
        return CreditChange(applied=False)
    now = utcnow()
    if policy == "reset":
        balance_id, added = session.execute(_RESET, {"user_id": user_id, "amount": amount, "now": now}).one()
        session.execute(_SET_AMOUNT, {"id": grant_id, "amount": added})
    else:
        balance_id = session.execute(_ADD, {"user_id": user_id, "amount": amount, "now": now}).scalar_one()
        added = amount
    write_ledger_row(
        session,
        user_id=user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=added,
        details={**details, "grantKey": key, "policy": policy, "planCredits": amount},
    )
    return CreditChange(applied=True, added=added)


def reverse_once(
    session: Session,
    *,
    grant_key: str,
    reversal_key: str,
    user_id: str,
    clerk_id: str,
    fraction: Fraction,
    source_event_id: str | None,
    details: dict[str, Any],
) -> CreditChange:
    """Reverse `fraction` of the grant under `grant_key` (cumulatively), once per `reversal_key`.

    - No grant yet (out-of-order delivery): the grant key is claimed with amount 0, so the grant that
      arrives later is a no-op — no net credits.
    - Partial reversals are cumulative: the target is `floor(granted × fraction)` (rounded down, in the
      user's favour) and only what earlier reversals of this grant did not cover is removed; a full
      reversal (`fraction` 1) removes the rest.
    - The balance never goes below zero: the ledger row records what was really removed, and the
      `shortfall` (intended − removed) in its details. The reversal key's `amount` is minus the intended
      reversal, so a later partial refund does not try to remove the shortfall again.
    All reversals of one grant are serialized by a lock on its key row.
    """
    ensure_balance(session, user_id=user_id, clerk_id=clerk_id)
    if _claim(session, grant_key, user_id, None, 0, source_event_id) is not None:
        claimed = _claim(session, reversal_key, user_id, None, 0, source_event_id)
        return CreditChange(applied=claimed is not None, before_grant=True)
    granted = max(session.execute(_LOCK_GRANT, {"key": grant_key}).scalar_one(), 0)
    prefix = grant_key + REVERSAL_SUFFIX
    already = session.execute(_REVERSED_SO_FAR, {"n": len(prefix), "prefix": prefix}).scalar_one()
    target = granted if fraction >= 1 else math.floor(granted * max(fraction, Fraction(0)))
    intended = max(0, min(granted, target) - already)
    if _claim(session, reversal_key, user_id, None, -intended, source_event_id) is None:
        return CreditChange(applied=False)
    if intended == 0:
        return CreditChange(applied=True)
    balance_id, removed = session.execute(
        _REMOVE_CAPPED, {"user_id": user_id, "amount": intended, "now": utcnow()}
    ).one()
    write_ledger_row(
        session,
        user_id=user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_REVERSAL,
        added=-removed,
        details={
            **details,
            "grantKey": grant_key,
            "reversalKey": reversal_key,
            "intended": intended,
            "reversed": removed,
            "shortfall": intended - removed,
        },
    )
    return CreditChange(applied=True, added=-removed, shortfall=intended - removed)


# ---- deletions and restores of a charge -----------------------------------------------------------------
#
# A restore cancels one deletion. Each deletion and each restore has its own key under the grant's
# reversal prefix (`<grant>:reversal:deleted:<event>`, `<grant>:reversal:restored:<event>`), so duplicates
# are no-ops and the charge is deleted exactly when it has more deletions than restores, in whatever order
# they were processed. The restore key's amount is what it gave back, so the cumulative reversal arithmetic
# of later refunds stays right. A deletion's tombstone (grant key claimed with amount 0 before any grant)
# is lifted by renaming it `<grant>:lifted:<restore event>`: it stays on record and the grant key is free.

DELETED_INFIX = ":deleted:"
RESTORED_INFIX = ":restored:"
LIFTED_SUFFIX = ":lifted:"
_GRANT_LOCK_NAMESPACE = 0x6772616E  # "gran": apart from the job locks' key space

_LOCK_PAYMENT = text("SELECT pg_advisory_xact_lock(:ns, :key)")
_LOCK_GRANT_ROW = text("""SELECT id, amount, "sourceEventId" FROM "CreditGrant" WHERE "grantKey" = :key FOR UPDATE""")
_REVERSAL_KEYS = text(
    """SELECT "grantKey", amount, "sourceEventId" FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix"""
)
_RENAME_KEY = text("""UPDATE "CreditGrant" SET "grantKey" = :new_key WHERE id = :id""")
_GIVEN_BACK = text(
    """SELECT COALESCE(SUM("creditsUsed"), 0) FROM "UsageHistory"
        WHERE "userId" = :user_id AND left(details->>'restoreKey', :n) = :prefix"""
)
_REMOVED_BY = text(
    """SELECT COALESCE(SUM("creditsUsed"), 0) FROM "UsageHistory"
        WHERE "userId" = :user_id AND left(details->>'reversalKey', :n) = :prefix"""
)


@dataclass(frozen=True)
class _Reversals:
    """The reversal keys of one grant, by kind."""

    deletions: list[tuple[str, int, str | None]]
    restores: list[tuple[str, int, str | None]]
    others: list[tuple[str, int, str | None]]  # refunds, chargebacks, partial refunds: never undone


def _lock_payment(session: Session, grant_key: str) -> None:
    """Serialize the deletions and restores of one charge (taken before its `CreditGrant` rows)."""
    session.execute(_LOCK_PAYMENT, {"ns": _GRANT_LOCK_NAMESPACE, "key": zlib.crc32(grant_key.encode()) & 0x7FFFFFFF})


def _reversals(session: Session, grant_key: str) -> _Reversals:
    prefix = grant_key + REVERSAL_SUFFIX
    found = [tuple(row) for row in session.execute(_REVERSAL_KEYS, {"n": len(prefix), "prefix": prefix}).all()]
    deleted, restored = prefix + DELETED_INFIX, prefix + RESTORED_INFIX
    return _Reversals(
        deletions=[row for row in found if row[0].startswith(deleted)],
        restores=[row for row in found if row[0].startswith(restored)],
        others=[row for row in found if not row[0].startswith((deleted, restored))],
    )


def deletion_key(grant_key: str, event_key: str) -> str:
    return f"{grant_key}{REVERSAL_SUFFIX}{DELETED_INFIX}{event_key}"


def restore_key(grant_key: str, event_key: str) -> str:
    return f"{grant_key}{REVERSAL_SUFFIX}{RESTORED_INFIX}{event_key}"


def reverse_deletion_once(
    session: Session,
    *,
    grant_key: str,
    event_key: str,
    user_id: str,
    clerk_id: str,
    source_event_id: str | None,
    details: dict[str, Any],
) -> CreditChange:
    """A deleted charge: reverse the rest of its grant (or leave a tombstone before it), once per deletion.

    A restore already processed for this deletion (delivered out of order) cancels it: nothing is reversed.
    """
    _lock_payment(session, grant_key)
    key = deletion_key(grant_key, event_key)
    existing = _reversals(session, grant_key)
    if len(existing.restores) > len(existing.deletions):
        ensure_balance(session, user_id=user_id, clerk_id=clerk_id)
        return CreditChange(applied=_claim(session, key, user_id, None, 0, source_event_id) is not None)
    return reverse_once(
        session,
        grant_key=grant_key,
        reversal_key=key,
        user_id=user_id,
        clerk_id=clerk_id,
        fraction=Fraction(1),
        source_event_id=source_event_id,
        details=details,
    )


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did: `lifted` a deletion's tombstone, or gave back `added` credits a deletion took."""

    applied: bool
    lifted: bool = False
    added: int = 0
    pending: bool = False  # processed before its deletion: the deletion will find it


def restore_once(
    session: Session,
    *,
    grant_key: str,
    event_key: str,
    user_id: str,
    clerk_id: str,
    source_event_id: str | None,
    details: dict[str, Any],
) -> RestoreResult:
    """A restored charge cancels one deletion, once per restore event.

    - Deletion before any grant: its tombstone is lifted (renamed), so the charge's payment grants once.
    - Deletion that reversed a grant: what the deletions removed and no restore gave back yet is added back.
    - A tombstone or reversal that came from a refund or chargeback is never undone.
    """
    _lock_payment(session, grant_key)
    ensure_balance(session, user_id=user_id, clerk_id=clerk_id)
    key = restore_key(grant_key, event_key)
    claimed = _claim(session, key, user_id, None, 0, source_event_id)
    if claimed is None:
        return RestoreResult(applied=False)
    grant = session.execute(_LOCK_GRANT_ROW, {"key": grant_key}).one_or_none()
    reversals = _reversals(session, grant_key)
    if len(reversals.restores) != len(reversals.deletions):  # ahead of its deletion, or still deleted
        return RestoreResult(applied=True, pending=len(reversals.restores) > len(reversals.deletions))
    if grant is None or reversals.others:
        return RestoreResult(applied=True)
    grant_id, amount, grant_source = grant
    if amount == 0 and any(source == grant_source for _, _, source in reversals.deletions):
        session.execute(_RENAME_KEY, {"id": grant_id, "new_key": f"{grant_key}{LIFTED_SUFFIX}{event_key}"})
        return RestoreResult(applied=True, lifted=True)
    intended = -sum(amount for _, amount, _ in reversals.deletions + reversals.restores)
    if intended <= 0:
        return RestoreResult(applied=True)
    session.execute(_SET_AMOUNT, {"id": claimed, "amount": intended})
    removed = _removed_by_deletions(session, grant_key, user_id)
    if removed <= 0:
        return RestoreResult(applied=True)
    balance_id = session.execute(_ADD, {"user_id": user_id, "amount": removed, "now": utcnow()}).scalar_one()
    write_ledger_row(
        session,
        user_id=user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=removed,
        details={**details, "grantKey": grant_key, "restoreKey": key, "intended": intended, "restored": removed},
    )
    return RestoreResult(applied=True, added=removed)


def _removed_by_deletions(session: Session, grant_key: str, user_id: str) -> int:
    """Credits the deletions of this grant really removed, minus what restores already gave back."""
    prefix = grant_key + REVERSAL_SUFFIX
    removed = session.execute(
        _REMOVED_BY, {"user_id": user_id, "n": len(prefix + DELETED_INFIX), "prefix": prefix + DELETED_INFIX}
    ).scalar_one()
    given_back = -session.execute(
        _GIVEN_BACK, {"user_id": user_id, "n": len(prefix + RESTORED_INFIX), "prefix": prefix + RESTORED_INFIX}
    ).scalar_one()
    return removed - given_back
