"""Reconciliation service: every `CreditBalance` against its ledger.

One lock-free streamed read of every balance; consistent balances that changed since their stamp get
`lastSyncedAt` (its meaning: `models.ledger.reconciliation`); balances without an origin get their opening row;
drift is reported, and with `fix` booked as one adjustment row. Writes happen in one short transaction per
page (up to `page_size` balances that need one), locked in id order and re-read under the lock, so a
deduction committed meanwhile is never mistaken for drift and never lost. The balance itself is never
overwritten: corrections are ledger rows.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from ingest.broker.run_reports import record_reconcile
from ingest.config.database import default_engine
from ingest.config.settings import get_settings
from models.db import transaction
from models.ledger import reconciliation as rec
from workers.jobs.runner import Job, run_job

log = logging.getLogger(__name__)

JOB = Job("reconcile", "reconcile", log)
MAX_REPORTED = 1000  # drift rows kept for the CLI table; counts and sums cover everything


@dataclass
class ReconcileReport:
    """What one run saw and did."""

    run_id: str
    status: str = "done"  # done | skipped_locked
    scanned: int = 0
    consistent: int = 0
    openings: int = 0
    opening_credits: int = 0
    drifted: int = 0
    drift_credits: int = 0
    fixed: int = 0
    lots_settled: int = 0  # balances whose live lots did not sum to the balance (an opening lot, or a correction)
    stamped: int = 0  # lastSyncedAt set: consistent and changed since the last stamp, or just settled
    busy: int = 0
    seconds: float = 0.0
    drifts: list[rec.BalanceState] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "drifts"}


def reconcile(
    *,
    fix: bool,
    clerk_user_id: str | None = None,
    page_size: int = 1000,
    dry_run: bool = False,
    engine: Engine | None = None,
    use_lock: bool = True,
    lock_timeout_ms: int = 2000,
) -> ReconcileReport:
    """One pass over every balance (or one user's). `dry_run` writes nothing, not even opening rows."""
    engine = engine or default_engine()
    report = ReconcileReport(run_id=secrets.token_hex(6))

    def work() -> None:
        started = time.perf_counter()
        _run(engine, report, fix, clerk_user_id, page_size, dry_run, lock_timeout_ms)
        report.seconds = round(time.perf_counter() - started, 3)
        if clerk_user_id is None and not dry_run:
            _publish(report)

    return run_job(JOB, report, work, engine=engine if use_lock else None)


def _publish(report: ReconcileReport) -> None:
    """For every receiver's `/metrics` (the `pedro_ingest_balance_drift_*` gauges); best effort."""
    unfixed = report.drifted - report.fixed
    settings = get_settings()
    try:
        record_reconcile(
            settings.celery_broker_url,
            settings.celery_queue,
            drifted_balances=unfixed,
            drift_credits=report.drift_credits if unfixed else 0,
            timeout=settings.ready_timeout,
        )
    except Exception as error:  # the run's own result stands; only the metric is stale
        log.warning("reconcile result not recorded for /metrics: %s", type(error).__name__)


def _run(
    engine: Engine,
    report: ReconcileReport,
    fix: bool,
    clerk_user_id: str | None,
    page_size: int,
    dry_run: bool,
    lock_timeout_ms: int,
) -> None:
    if clerk_user_id is not None:
        with engine.connect() as connection:
            page = rec.read_one(connection, clerk_user_id)
            connection.rollback()
        _settle(engine, report, page, fix, dry_run, lock_timeout_ms)
        return
    with engine.connect() as reader:
        reader = reader.execution_options(isolation_level="REPEATABLE READ")
        with reader.begin():  # count and scan in one snapshot; the writes go through other connections
            for page in rec.scan(reader, page_size):
                _settle(engine, report, page, fix, dry_run, lock_timeout_ms)


def _settle(
    engine: Engine,
    report: ReconcileReport,
    page: rec.Page,
    fix: bool,
    dry_run: bool,
    lock_timeout_ms: int,
) -> None:
    report.scanned += page.scanned
    report.consistent += page.consistent
    pending = page.pending
    if dry_run:
        for state in pending:
            if state.needs_opening:
                report.openings += 1
                report.opening_credits += state.drift
            elif state.drift != 0:
                _count(report, state, fixed=False)
            report.lots_settled += int(state.lot_drift != 0)
        return
    if page.restamp:
        with engine.begin() as connection:
            report.stamped += rec.touch_synced(connection, page.restamp)
    if not fix:  # drift is only reported: the snapshot is enough (the web app changes balance and ledger together)
        for state in pending:
            if not state.needs_opening and state.drift != 0:
                _count(report, state, fixed=False)
        pending = [state for state in pending if state.needs_opening or state.drift == 0]
    if not pending:
        return
    try:
        with transaction(engine) as session:
            session.execute(text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": f"{lock_timeout_ms}ms"})
            settled: list[str] = []
            for state in rec.lock_and_reread(session, [s.id for s in pending]):
                if state.lot_drift != 0 and (fix or state.drift == 0 or state.needs_opening):
                    rec.settle_lots(session, state)
                    report.lots_settled += 1
                if state.needs_opening:
                    rec.record_adjustment(session, state, report.run_id, rec.OPENING_KIND)
                    report.openings += 1
                    report.opening_credits += state.drift
                    settled.append(state.id)
                elif state.drift != 0:
                    _count(report, state, fixed=fix)
                    if fix:
                        rec.record_adjustment(session, state, report.run_id, rec.DRIFT_KIND)
                        settled.append(state.id)
                else:
                    settled.append(state.id)  # a concurrent run (or the web app) already made it consistent
                    report.consistent += 1
            rec.mark_synced_locked(session, settled)
            report.stamped += len(settled)
    except OperationalError as error:
        if getattr(error.orig, "pgcode", None) != "55P03":  # lock_not_available
            raise
        report.busy += len(pending)
        log.warning("reconcile: balances busy, left for the next run", extra={"balances": len(pending)})


def _count(report: ReconcileReport, state: rec.BalanceState, *, fixed: bool) -> None:
    report.drifted += 1
    report.drift_credits += abs(state.drift)
    report.fixed += int(fixed)
    if len(report.drifts) < MAX_REPORTED:
        report.drifts.append(state)
    log.warning(
        "balance drift%s",
        " fixed" if fixed else "",
        extra={
            "clerk_user_id": state.clerk_user_id,
            "balance": state.balance,
            "ledger": state.ledger,
            "drift": state.drift,
        },
    )
