"""Data access for balance reconciliation: compare `CreditBalance` with its `UsageHistory` ledger.

The invariant (see `models/ledger.py`): `creditsRemaining == sum(-creditsUsed)` over the balance's ledger
rows. A balance has an *origin* row when pedro-ingest opened it (signup grant, `CREDIT_GRANT` with
`details.kind = "signup"`) or reconciliation recorded its opening balance (`CREDIT_ADJUSTMENT` with
`details.kind = "opening_balance"`). A balance without an origin predates pedro-ingest (or the web app
created it): its opening row is `creditsRemaining - ledger sum` when first seen. With an origin, any
difference is drift.

Reading is lock-free: one statement sees one snapshot, and the web app changes the balance and writes its
`UsageHistory` row in one transaction, so a deduction in flight is either wholly visible or not at all.
Writing locks the page's balances in id order (the web app locks one balance per transaction, so no
deadlock), re-reads them under the lock, and writes ledger rows only for what is still true then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from models import ledger
from models.base import utcnow
from models.prisma import OperationType

OPENING_KIND = "opening_balance"
DRIFT_KIND = "drift_correction"

_STATE_COLUMNS = """
    b.id, b."userId", b."clerkUserId", b."creditsRemaining" AS balance,
    COALESCE(l.total, 0) AS ledger, COALESCE(l.has_origin, false) AS has_origin
"""
_LEDGER_LATERAL = """
    LEFT JOIN LATERAL (
        SELECT sum(-u."creditsUsed")::bigint AS total,
               bool_or((u."operationType" = 'CREDIT_GRANT' AND u.details->>'kind' = 'signup')
                    OR (u."operationType" = 'CREDIT_ADJUSTMENT' AND u.details->>'kind' = 'opening_balance'))
                   AS has_origin
          FROM "UsageHistory" u
         WHERE u."creditBalanceId" = b.id
    ) l ON true
"""
_PAGE = text(
    f"""
    SELECT {_STATE_COLUMNS}
      FROM (SELECT * FROM "CreditBalance" WHERE id > :after ORDER BY id LIMIT :limit) b
      {_LEDGER_LATERAL}
     ORDER BY b.id
    """
)
_ONE = text(f"""SELECT {_STATE_COLUMNS} FROM "CreditBalance" b {_LEDGER_LATERAL} WHERE b."clerkUserId" = :clerk_id""")
_LOCK = text("""SELECT id FROM "CreditBalance" WHERE id = ANY(:ids) ORDER BY id FOR UPDATE""")
_LOCKED_STATE = text(f"""SELECT {_STATE_COLUMNS} FROM "CreditBalance" b {_LEDGER_LATERAL} WHERE b.id = ANY(:ids)""")
# Never waits for the web app: a balance locked by a deduction right now keeps its old lastSyncedAt.
_TOUCH = text(
    """
    UPDATE "CreditBalance" SET "lastSyncedAt" = :now
     WHERE id IN (SELECT id FROM "CreditBalance" WHERE id = ANY(:ids) ORDER BY id FOR UPDATE SKIP LOCKED)
    """
)
_TOUCH_CHANGED = text("""UPDATE "CreditBalance" SET "lastSyncedAt" = :now, "updatedAt" = :now WHERE id = ANY(:ids)""")


@dataclass(frozen=True)
class BalanceState:
    """A balance next to what its ledger says, read in one snapshot."""

    id: str
    user_id: str
    clerk_user_id: str
    balance: int
    ledger: int
    has_origin: bool

    @property
    def drift(self) -> int:
        """Credits in the balance that no ledger row explains (negative: missing)."""
        return self.balance - self.ledger

    @property
    def needs_opening(self) -> bool:
        return not self.has_origin

    @property
    def consistent(self) -> bool:
        return self.has_origin and self.drift == 0


def _states(rows: Sequence) -> list[BalanceState]:
    return [
        BalanceState(r.id, r.userId, r.clerkUserId, int(r.balance), int(r.ledger), bool(r.has_origin)) for r in rows
    ]


def read_page(connection: Connection, after: str, limit: int) -> list[BalanceState]:
    """The next `limit` balances by id after `after` (keyset paging: bounded memory, no OFFSET scans)."""
    return _states(connection.execute(_PAGE, {"after": after, "limit": limit}).all())


def read_one(connection: Connection, clerk_user_id: str) -> list[BalanceState]:
    """The balance of one Clerk user (empty when there is none)."""
    return _states(connection.execute(_ONE, {"clerk_id": clerk_user_id}).all())


def touch_synced(connection: Connection, ids: Sequence[str]) -> int:
    """Stamp `lastSyncedAt` on balances found consistent, skipping any the web app holds right now."""
    if not ids:
        return 0
    return connection.execute(_TOUCH, {"ids": list(ids), "now": utcnow()}).rowcount


def lock_and_reread(session: Session, ids: Sequence[str]) -> list[BalanceState]:
    """Lock the balances in id order, then read them again: the state every write decision is made on."""
    session.execute(_LOCK, {"ids": sorted(ids)})
    return sorted(_states(session.execute(_LOCKED_STATE, {"ids": list(ids)}).all()), key=lambda s: s.id)


def record_adjustment(session: Session, state: BalanceState, run_id: str, kind: str) -> None:
    """Book the balance's unexplained difference as an adjustment row; the balance itself is untouched.

    `OPENING_KIND`: the first row of a balance that predates pedro-ingest. `DRIFT_KIND`: a change made
    behind the ledger's back. Either way the ledger explains every credit the balance holds again.
    """
    ledger.write_ledger_row(
        session,
        user_id=state.user_id,
        balance_id=state.id,
        operation=OperationType.CREDIT_ADJUSTMENT,
        added=state.drift,
        details={"kind": kind, "balance": state.balance, "ledgerBefore": state.ledger, "run": run_id},
    )


def mark_synced_locked(session: Session, ids: Sequence[str]) -> None:
    """`lastSyncedAt` (and `updatedAt`) on balances this transaction holds locked and has just settled."""
    if ids:
        session.execute(_TOUCH_CHANGED, {"ids": list(ids), "now": utcnow()})
