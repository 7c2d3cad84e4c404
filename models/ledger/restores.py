"""Deletions and restores of a charge (Asaas `PAYMENT_DELETED` / `PAYMENT_RESTORED`), in any order."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import utcnow
from models.ledger.balances import ADD_SQL, ensure_balance, write_ledger_row
from models.ledger.grants import (
    REVERSAL_SUFFIX,
    SET_AMOUNT_SQL,
    CreditChange,
    claim_key,
    lock_grant,
    record_without_effect,
    reverse_once,
)
from models.prisma import OperationType

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
    lock_grant(session, grant_key)
    key = deletion_key(grant_key, event_key)
    existing = _reversals(session, grant_key)
    if len(existing.restores) > len(existing.deletions):
        return record_without_effect(
            session, key=key, user_id=user_id, clerk_id=clerk_id, source_event_id=source_event_id
        )
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
    lock_grant(session, grant_key)
    ensure_balance(session, user_id=user_id, clerk_id=clerk_id)
    key = restore_key(grant_key, event_key)
    claimed = claim_key(session, key, user_id, None, 0, source_event_id)
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
    session.execute(SET_AMOUNT_SQL, {"id": claimed, "amount": intended})
    removed = _removed_by_deletions(session, grant_key, user_id)
    if removed <= 0:
        return RestoreResult(applied=True)
    balance_id = session.execute(ADD_SQL, {"user_id": user_id, "amount": removed, "now": utcnow()}).scalar_one()
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
    removed: int = session.execute(
        _REMOVED_BY, {"user_id": user_id, "n": len(prefix + DELETED_INFIX), "prefix": prefix + DELETED_INFIX}
    ).scalar_one()
    given_back: int = -session.execute(
        _GIVEN_BACK, {"user_id": user_id, "n": len(prefix + RESTORED_INFIX), "prefix": prefix + RESTORED_INFIX}
    ).scalar_one()
    return removed - given_back
