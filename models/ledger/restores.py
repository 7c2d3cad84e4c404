"""Deletions and restores of a charge (Asaas `PAYMENT_DELETED` / `PAYMENT_RESTORED`), in any order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import utcnow
from models.ledger import lots
from models.ledger.balances import ensure_balance, write_ledger_row
from models.ledger.facts import CreditFact
from models.ledger.grants import (
    REVERSAL_SUFFIX,
    SET_AMOUNT_SQL,
    CreditChange,
    claim_key,
    lock_grant,
    record_without_effect,
    reverse_once,
)
from models.ledger.lots import LotTerms
from models.prisma import OperationType

# ---- deletions and restores of a charge -----------------------------------------------------------------
#
# A charge's deleted state follows the charge, not the number of messages about it: each deletion and each
# restore is a fact with its own key under the grant's reversal prefix (`<grant>:reversal:deleted:<event>`,
# `<grant>:reversal:restored:<event>`; duplicates are no-ops) and a provider time (its inbox row's
# `occurredAt`: Asaas's `dateCreated`, or for the payment backfill the time the API was read). The charge is
# deleted when its newest fact is a deletion; a tie counts as not deleted. So a deletion seen by both the
# webhook and the backfill, then one restore, leaves it restored, in whatever order the three are processed.
# Only a fact that changes the state moves credits: the deletion that makes it deleted reverses the rest of
# the grant (or leaves a tombstone before it); the restore that makes it not deleted gives back what the
# deletions removed (the restore key's amount records it, so the cumulative arithmetic of later refunds
# stays right), or lifts the tombstone by renaming it `<grant>:lifted:<restore event>` (kept on record).

DELETED_INFIX = ":deleted:"
RESTORED_INFIX = ":restored:"
LIFTED_SUFFIX = ":lifted:"
_LOCK_GRANT_ROW = text("""SELECT id, amount, "sourceEventId" FROM "CreditGrant" WHERE "grantKey" = :key FOR UPDATE""")
_REVERSAL_KEYS = text(
    """SELECT g."grantKey", g.amount, g."sourceEventId", COALESCE(w."occurredAt", w."receivedAt", g."createdAt")
         FROM "CreditGrant" g LEFT JOIN "WebhookEvent" w ON w.id = g."sourceEventId"
        WHERE left(g."grantKey", :n) = :prefix"""
)
_EVENT_TIME = text("""SELECT COALESCE("occurredAt", "receivedAt") FROM "WebhookEvent" WHERE id = :id""")
_RENAME_KEY = text("""UPDATE "CreditGrant" SET "grantKey" = :new_key WHERE id = :id""")
# Only pedro-ingest's own ledger rows (CREDIT_GRANT, CREDIT_REVERSAL: the web app's deductions cannot write
# them) are read for keys: a deduction's `details` is the web app's JSON and may say anything.
_GIVEN_BACK = text(
    """SELECT COALESCE(SUM("creditsUsed"), 0) FROM "UsageHistory"
        WHERE "userId" = :user_id AND "operationType" = 'CREDIT_GRANT' AND left(details->>'restoreKey', :n) = :prefix"""
)
_REMOVED_BY = text(
    """SELECT COALESCE(SUM("creditsUsed"), 0) FROM "UsageHistory"
        WHERE "userId" = :user_id AND "operationType" = 'CREDIT_REVERSAL'
          AND left(details->>'reversalKey', :n) = :prefix"""
)


Fact = tuple[str, int, str | None, dt.datetime]  # key, amount, source event row, provider time


@dataclass(frozen=True)
class _Reversals:
    """The reversal keys of one grant, by kind."""

    deletions: list[Fact]
    restores: list[Fact]
    others: list[Fact]  # refunds, chargebacks, partial refunds: never undone

    def has(self, key: str) -> bool:
        return any(fact[0] == key for fact in self.deletions + self.restores)


def _deleted(deletions: list[Fact], restores: list[Fact]) -> bool:
    """Deleted when the newest fact is a deletion; a deletion and a restore at the same time: not deleted."""
    if not deletions:
        return False
    return not restores or max(fact[3] for fact in deletions) > max(fact[3] for fact in restores)


def _fact(session: Session, key: str, source_event_id: str | None) -> Fact:
    """The fact this event adds, timed by its inbox row (now, for a caller without one)."""
    at = session.execute(_EVENT_TIME, {"id": source_event_id}).scalar() if source_event_id else None
    return (key, 0, source_event_id, at or utcnow())


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
    fact: CreditFact,
    *,
    grant_key: str,
    event_key: str,
    terms: LotTerms | None = None,
) -> CreditChange:
    """A deletion fact: when it makes the charge deleted (see above), reverse the rest of its grant (or leave a
    tombstone before it); otherwise it is recorded and changes nothing."""
    lock_grant(session, grant_key)
    key = deletion_key(grant_key, event_key)
    existing = _reversals(session, grant_key)
    if existing.has(key):
        return CreditChange(applied=False)
    was_deleted = _deleted(existing.deletions, existing.restores)
    if was_deleted or not _deleted([*existing.deletions, _fact(session, key, fact.source_event_id)], existing.restores):
        return record_without_effect(session, fact, key=key)
    return reverse_once(
        session,
        fact,
        grant_key=grant_key,
        reversal_key=key,
        fraction=Fraction(1),
        terms=terms,
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
    fact: CreditFact,
    *,
    grant_key: str,
    event_key: str,
) -> RestoreResult:
    """A restore fact: when it makes the charge not deleted (see above), undo what the deletions did.

    - Deletion before any grant: its tombstone is lifted (renamed), so the charge's payment grants once.
    - Deletion that reversed a grant: what the deletions removed and no restore gave back yet is added back.
    - A tombstone or reversal that came from a refund or chargeback is never undone.
    """
    lock_grant(session, grant_key)
    ensure_balance(session, user_id=fact.user_id, clerk_id=fact.clerk_id)
    key = restore_key(grant_key, event_key)
    reversals = _reversals(session, grant_key)
    if reversals.has(key):
        return RestoreResult(applied=False)
    this = _fact(session, key, fact.source_event_id)
    claimed = claim_key(session, key, fact.user_id, None, 0, fact.source_event_id)
    if claimed is None:
        return RestoreResult(applied=False)
    if not reversals.deletions:  # ahead of any deletion: a deletion older than it will change nothing
        return RestoreResult(applied=True, pending=True)
    if not _deleted(reversals.deletions, reversals.restores) or _deleted(
        reversals.deletions, [*reversals.restores, this]
    ):
        return RestoreResult(applied=True)
    grant = session.execute(_LOCK_GRANT_ROW, {"key": grant_key}).one_or_none()
    if grant is None or reversals.others:
        return RestoreResult(applied=True)
    grant_id, amount, grant_source = grant
    if amount == 0 and any(mark[2] == grant_source for mark in reversals.deletions):
        session.execute(_RENAME_KEY, {"id": grant_id, "new_key": f"{grant_key}{LIFTED_SUFFIX}{event_key}"})
        return RestoreResult(applied=True, lifted=True)
    intended = -sum(mark[1] for mark in reversals.deletions + reversals.restores)
    if intended <= 0:
        return RestoreResult(applied=True)
    session.execute(SET_AMOUNT_SQL, {"id": claimed, "amount": intended})
    removed = _removed_by_deletions(session, grant_key, fact.user_id)
    if removed <= 0:
        return RestoreResult(applied=True)
    balance_id = lots.give_back(session, user_id=fact.user_id, amount=removed, fact_key=None, grant_key=grant_key)
    write_ledger_row(
        session,
        user_id=fact.user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=removed,
        details={**fact.details, "grantKey": grant_key, "restoreKey": key, "intended": intended, "restored": removed},
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
    return int(removed - given_back)
