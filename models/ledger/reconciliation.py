"""Data access for balance reconciliation: compare `CreditBalance` with its `UsageHistory` ledger and its lots.

Second invariant: the balance (never below zero) equals the sum of its live `CreditLot` rows' `remaining`.
Third: a debt (open `CreditDebt`) exists only while the balance is 0.
A balance the web app created has no lot until its first write or the next run, which settles its lots
(`pedro_lots_settle`: an `opening` lot, or an adjustment when lots and balance disagree).

The invariant (see `models.ledger`): `creditsRemaining == sum(-creditsUsed)` over the balance's ledger
rows. A balance has an *origin* row when pedro-ingest opened it (signup grant, `CREDIT_GRANT` with
`details.kind = "signup"`) or reconciliation recorded its opening balance (`CREDIT_ADJUSTMENT` with
`details.kind = "opening_balance"`). A balance without an origin predates pedro-ingest (or the web app
created it): its opening row is `creditsRemaining - ledger sum` when first seen. With an origin, any
difference is drift.

Reading is lock-free: one statement sees one snapshot, and the web app changes the balance and writes its
`UsageHistory` row in one transaction, so a deduction in flight is either wholly visible or not at all.
A run reads every balance with one streamed statement (the ledger aggregated once, as a plain SQL check
would) and gets back only the balances that need a write.

`lastSyncedAt` means: the balance as it stands now was found equal to its ledger at that time. A run sets
it on balances it settles and on consistent balances that changed since their stamp (a ledger row, or an
`updatedAt`, after it); a consistent balance with nothing newer keeps its stamp, which is still true, so a
steady run writes almost nothing. When the whole table was last checked is the
`pedro_ingest_reconcile_last_run_timestamp_seconds` metric.
Writing locks the page's balances in id order (the web app locks one balance per transaction, so no
deadlock), re-reads them under the lock, and writes ledger rows only for what is still true then.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.orm import Session

from models import ledger
from models.base import utcnow
from models.prisma import OperationType

OPENING_KIND = "opening_balance"
DRIFT_KIND = "drift_correction"

_STATE_COLUMNS = """
    b.id, b."userId", b."clerkUserId", b."creditsRemaining" AS balance,
    COALESCE(l.total, 0) AS ledger, COALESCE(l.has_origin, false) AS has_origin, COALESCE(k.live, 0) AS lots,
    COALESCE(d.owed, 0) AS debt
"""
_LIVE_LOTS = """SELECT sum(k.remaining)::bigint AS live FROM "CreditLot" k
                 WHERE k."expiredAt" IS NULL AND k."voidedAt" IS NULL"""
_ORIGIN = """(u."operationType" = 'CREDIT_GRANT' AND u.details->>'kind' = 'signup')
              OR (u."operationType" = 'CREDIT_ADJUSTMENT' AND u.details->>'kind' = 'opening_balance')"""
_LEDGER_LATERAL = f"""
    LEFT JOIN LATERAL (
        SELECT sum(-u."creditsUsed")::bigint AS total, bool_or({_ORIGIN}) AS has_origin
          FROM "UsageHistory" u
         WHERE u."creditBalanceId" = b.id
    ) l ON true
    LEFT JOIN LATERAL ({_LIVE_LOTS} AND k."creditBalanceId" = b.id) k ON true
    LEFT JOIN LATERAL (SELECT sum(d.remaining)::bigint AS owed FROM "CreditDebt" d
                        WHERE d."creditBalanceId" = b.id AND d.remaining > 0) d ON true
"""
# Every balance in one statement (one snapshot): the ledger is aggregated once (a hash aggregate, as a plain
# SQL check would do it) and only what needs Python comes back: balances to open or drifted, and consistent
# ones whose stamp no longer covers their current state (a ledger row or an update after `lastSyncedAt`).
_SCAN = text(
    f"""
    SELECT id, "userId", "clerkUserId", balance, ledger, has_origin, lots, debt,
           has_origin AND balance = ledger AND greatest(balance, 0) = lots AND NOT (debt > 0 AND balance > 0)
             AS consistent
      FROM (SELECT b.id, b."userId", b."clerkUserId", b."creditsRemaining" AS balance,
                   COALESCE(l.total, 0) AS ledger, COALESCE(l.has_origin, false) AS has_origin,
                   COALESCE(k.live, 0) AS lots, COALESCE(d.owed, 0) AS debt,
                   (l.last_entry > b."lastSyncedAt" OR b."updatedAt" > b."lastSyncedAt") AS changed
              FROM "CreditBalance" b
              LEFT JOIN (SELECT u."creditBalanceId" AS id, sum(-u."creditsUsed")::bigint AS total,
                                bool_or({_ORIGIN}) AS has_origin, max(u.timestamp) AS last_entry
                           FROM "UsageHistory" u GROUP BY 1) l ON l.id = b.id
              LEFT JOIN (SELECT k."creditBalanceId" AS id, sum(k.remaining)::bigint AS live FROM "CreditLot" k
                          WHERE k."expiredAt" IS NULL AND k."voidedAt" IS NULL GROUP BY 1) k ON k.id = b.id
              LEFT JOIN (SELECT d."creditBalanceId" AS id, sum(d.remaining)::bigint AS owed FROM "CreditDebt" d
                          WHERE d.remaining > 0 GROUP BY 1) d ON d.id = b.id) s
     WHERE NOT (has_origin AND balance = ledger AND greatest(balance, 0) = lots AND NOT (debt > 0 AND balance > 0))
        OR changed
    """
)
_COUNT = text('SELECT count(*) FROM "CreditBalance"')
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
_SETTLE_LOTS = text("SELECT pedro_lots_settle(:id)")
_REPAY = text("SELECT pedro_debt_repay(:id, :available)")
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
    lots: int = 0  # Σ remaining of the balance's live credit lots
    debt: int = 0  # credits still owed (open `CreditDebt` rows)

    @property
    def debt_drift(self) -> bool:
        """A debt beside a positive balance: every writer repays debt first, so something went around them."""
        return self.debt > 0 and self.balance > 0

    @property
    def lot_drift(self) -> int:
        """Credits the balance holds that no live lot explains (negative: lots hold more than the balance)."""
        return max(self.balance, 0) - self.lots

    @property
    def drift(self) -> int:
        """Credits in the balance that no ledger row explains (negative: missing)."""
        return self.balance - self.ledger

    @property
    def needs_opening(self) -> bool:
        return not self.has_origin

    @property
    def consistent(self) -> bool:
        return self.has_origin and self.drift == 0 and self.lot_drift == 0 and not self.debt_drift


def _states(rows: Sequence[Row[Any]]) -> list[BalanceState]:
    return [
        BalanceState(
            r.id, r.userId, r.clerkUserId, int(r.balance), int(r.ledger), bool(r.has_origin), int(r.lots), int(r.debt)
        )
        for r in rows
    ]


@dataclass
class Page:
    """Balances that need a write: `pending` (an opening row, or drift) and `restamp` (consistent, but their
    ledger or row changed since `lastSyncedAt`). Consistent balances whose stamp still holds are not listed."""

    scanned: int = 0
    consistent: int = 0
    restamp: list[str] = field(default_factory=list)
    pending: list[BalanceState] = field(default_factory=list)


def scan(connection: Connection, batch: int) -> Iterator[Page]:
    """All balances in one snapshot, streamed through a server-side cursor in pages of at most `batch` rows
    that need attention (memory stays bounded whatever the table size). The first page carries the count of
    balances scanned and of consistent ones. Call inside a REPEATABLE READ transaction: count and scan then
    see the same snapshot."""
    scanned = int(connection.execute(_COUNT).scalar_one())
    result = connection.execution_options(stream_results=True, max_row_buffer=batch).execute(_SCAN)
    pending_total = 0
    pages: list[Page] = []
    for rows in result.partitions(batch):
        page = Page()
        for r in rows:
            if r.consistent:
                page.restamp.append(r.id)
            else:
                page.pending.append(_states([r])[0])
        pending_total += len(page.pending)
        pages.append(page)
        if len(pages) == 2:  # keep one page back, so the last one can carry the totals
            yield pages.pop(0)
    last = pages[0] if pages else Page()
    last.scanned, last.consistent = scanned, scanned - pending_total
    yield last


def read_one(connection: Connection, clerk_user_id: str) -> Page:
    """The balance of one Clerk user (nothing scanned when there is none); a consistent one is restamped."""
    states = _states(connection.execute(_ONE, {"clerk_id": clerk_user_id}).all())
    return Page(
        scanned=len(states),
        consistent=sum(s.consistent for s in states),
        restamp=[s.id for s in states if s.consistent],
        pending=[s for s in states if not s.consistent],
    )


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


def repay_debt(session: Session, state: BalanceState) -> int:
    """Repay open debt from the balance (locked), oldest first, one `debt_repayment` ledger row each; the
    balance and the ledger move together, so the state's `drift` is unchanged. Returns what was repaid."""
    return int(session.execute(_REPAY, {"id": state.id, "available": max(state.balance, 0)}).scalar_one())


def settle_lots(session: Session, state: BalanceState) -> None:
    """Make the balance's live lots sum to it (an `opening` lot for a balance that has none), under its lock."""
    session.execute(_SETTLE_LOTS, {"id": state.id})


def mark_synced_locked(session: Session, ids: Sequence[str]) -> None:
    """`lastSyncedAt` (and `updatedAt`) on balances this transaction holds locked and has just settled."""
    if ids:
        session.execute(_TOUCH_CHANGED, {"ids": list(ids), "now": utcnow()})
