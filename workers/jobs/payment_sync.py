"""Payment backfill: recover payments whose Asaas webhooks never arrived, from `GET /payments`.

Asaas pauses a webhook queue after 15 failed deliveries (about 13 hours), deletes events older than 14 days
and offers no API to list or resend them, so reading the payments' current state is the only recovery.
Each payment that moved credits becomes one `PAYMENT_SYNC` inbox row (see `handlers/asaas_sync.py`) that
is processed at once through the normal path (lock, handler, mark): `events list`, `replay` and the
ledger's `details` show it like any webhook.

Passes (the filters are date-granular, in São Paulo dates, so windows overlap by a day):
`paymentDate[ge]` (paid since), `dateCreated[ge]` (created since: cards confirmed without a payment date),
and, over a longer window, one pass per status that changes long after payment (confirmed, refunded,
charged back). Pages are read `ASAAS_API_CONCURRENCY` at a time and applied in order; after each page the
position is saved, so a run stopped by a 5xx storm, a rate limit or its budget resumes there next time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from ingest.config.database import default_engine
from ingest.config.settings import Settings, get_settings
from models import inbox
from models.base import utcnow
from models.inbox.reserved import SYNC_PROVIDER
from models.status import FINAL_STATUSES, REPLAYABLE_STATUSES
from workers.handlers.asaas_sync import EVENT_TYPE, implied_events, sync_event_id
from workers.jobs.payment_sync_state import Cursor, SyncState
from workers.jobs.runner import Job, run_job
from workers.processing.apply import process_event
from workers.providers.asaas_api import (
    PAGE_LIMIT,
    AsaasApi,
    AsaasApiError,
    AsaasBudgetSpent,
    AsaasUnauthorized,
    AsaasUnavailable,
    api_from_settings,
)

log = logging.getLogger(__name__)

JOB = Job("resync_payments", "payment backfill", log)
STATUS_PASSES = ("CONFIRMED", "REFUNDED", "CHARGEBACK_REQUESTED", "CHARGEBACK_DISPUTE", "AWAITING_CHARGEBACK_REVERSAL")
SAO_PAULO = dt.timezone(dt.timedelta(hours=-3))
STOPPED = {AsaasUnauthorized: "unauthorized", AsaasBudgetSpent: "budget_spent", AsaasUnavailable: "unavailable"}


@dataclass
class PaymentSyncReport:
    status: str = "done"  # done | skipped_no_key | skipped_locked | unauthorized | budget_spent | unavailable | failed
    since: str | None = None
    resumed_at: str | None = None
    pages: int = 0
    seen: int = 0
    stored: int = 0
    applied: int = 0
    already_applied: int = 0
    failed: int = 0
    requests: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def today_in_sao_paulo() -> dt.date:
    return dt.datetime.now(SAO_PAULO).date()


def passes(since: str, status_since: str) -> list[dict[str, str]]:
    return [
        {"paymentDate[ge]": since},
        {"dateCreated[ge]": since},
        *({"status": status, "dateCreated[ge]": status_since} for status in STATUS_PASSES),
    ]


def resync_payments(
    *,
    since: dt.date | None = None,
    dry_run: bool = False,
    settings: Settings | None = None,
    engine: Engine | None = None,
    api: AsaasApi | None = None,
    state: SyncState | None = None,
) -> PaymentSyncReport:
    """Backfill from `since` (default: where the last complete run started, less a day; else the lookback)."""
    settings = settings or get_settings()
    report = PaymentSyncReport()
    api = api or api_from_settings(settings, budget=settings.asaas_api_budget)
    if api is None:
        return run_job(JOB, report, lambda: None, missing_key="ASAAS_API_KEY")
    asaas = api
    sync_state = state or SyncState(asaas.limiter.redis)
    engine = engine or default_engine()

    def work() -> None:
        _run(_window(since, sync_state, settings, dry_run), report, dry_run, settings, engine, asaas, sync_state)
        report.requests = asaas.requests_made

    def when_locked() -> None:
        if since is not None and not dry_run:
            sync_state.request(since)  # the running (or next) backfill covers it

    return run_job(JOB, report, work, engine=engine, when_locked=when_locked)


def _window(since: dt.date | None, state: SyncState, settings: Settings, dry_run: bool) -> Cursor:
    """The window to cover, resuming an unfinished run's position when it covers at least as much."""
    today = today_in_sao_paulo()
    wanted = [day for day in (since, state.pending()) if day is not None]
    if not wanted:
        watermark = state.watermark()
        default = today - dt.timedelta(days=settings.payment_sync_lookback_days)
        wanted = [watermark - dt.timedelta(days=1) if watermark else default]
    start = min(wanted)
    status_start = min(start, today - dt.timedelta(days=settings.payment_sync_status_lookback_days))
    fresh = Cursor(start.isoformat(), status_start.isoformat(), 0, 0, today.isoformat())
    saved = None if dry_run else state.cursor()
    return saved if saved is not None and saved.since <= fresh.since else fresh


def _run(
    cursor: Cursor,
    report: PaymentSyncReport,
    dry_run: bool,
    settings: Settings,
    engine: Engine,
    api: AsaasApi,
    state: SyncState,
) -> None:
    report.since = cursor.since
    if cursor.pass_index or cursor.offset:
        report.resumed_at = f"pass {cursor.pass_index} offset {cursor.offset}"
    applier = _Applier(report, dry_run, settings, engine, api)
    try:
        all_passes = passes(cursor.since, cursor.status_since)
        for index in range(cursor.pass_index, len(all_passes)):
            offset = cursor.offset if index == cursor.pass_index else 0
            for next_offset in _pages(api, all_passes[index], offset, settings.asaas_api_concurrency, applier):
                if not dry_run:
                    state.save_cursor(replace(cursor, pass_index=index, offset=next_offset))
    except AsaasApiError as error:
        report.status = next((name for kind, name in STOPPED.items() if isinstance(error, kind)), "failed")
        log.error("payment backfill stopped: %s", error)  # messages never carry the key
        return
    if not dry_run:  # the watermark is when the run began: passes done before a stop did not see what came after
        state.finish(dt.date.fromisoformat(cursor.started_on), dt.date.fromisoformat(cursor.since))


def _pages(api: AsaasApi, filters: dict[str, str], offset: int, concurrency: int, applier: _Applier):
    """Apply every page of one pass from `offset`; yields the offset after each page applied."""
    read_at = utcnow()
    first = api.list_payments(filters, offset)
    applier.page(first, read_at)
    offset += len(first["data"])
    yield offset
    if not first.get("hasMore") or not first["data"]:
        return
    total = first.get("totalCount") if isinstance(first.get("totalCount"), int) else None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="asaas-page") as pool:
        while True:
            offsets = [offset + n * PAGE_LIMIT for n in range(concurrency)]
            offsets = [o for o in offsets if total is None or o < total] or offsets[:1]
            read_at = utcnow()  # before the requests: what they show was true then or later
            futures = [pool.submit(api.list_payments, filters, o) for o in offsets]
            for future in futures:
                page = future.result()  # an error stops here: pages before it are applied and saved
                applier.page(page, read_at)
                offset += len(page["data"])
                yield offset
                if not page.get("hasMore") or len(page["data"]) < PAGE_LIMIT:
                    for rest in futures:
                        rest.cancel()
                    if page.get("hasMore"):
                        break  # a short page that says more follows: continue from where it ended
                    return


class _Applier:
    """Turns each listed payment into its `PAYMENT_SYNC` row and applies it (or counts it, dry run)."""

    def __init__(self, report: PaymentSyncReport, dry_run: bool, settings: Settings, engine: Engine, api: AsaasApi):
        self.report = report
        self.dry_run = dry_run
        self.settings = settings
        self.engine = engine
        self.api = api
        self.installments: dict[str, dict[str, Any]] = {}

    def page(self, page: dict[str, Any], read_at: dt.datetime) -> None:
        self.report.pages += 1
        for payment in page["data"]:
            if isinstance(payment, dict) and payment.get("id"):
                self.report.seen += 1
                self.payment(payment, read_at)

    def payment(self, payment: dict[str, Any], read_at: dt.datetime) -> None:
        if not implied_events(payment):
            return
        event_id = sync_event_id(payment)
        with self.engine.connect() as connection:
            found = inbox.find_by_event_id(connection, SYNC_PROVIDER, event_id)
        if found is not None and found[1] in FINAL_STATUSES:
            self.report.already_applied += 1
            return
        if found is not None and found[1] in REPLAYABLE_STATUSES:
            self.report.failed += 1  # visible in `events list --status failed`; `replay` after the fix
            return
        if self.dry_run:
            self.report.stored += found is None
            return
        row_id = found[0] if found else self._store(event_id, payment, read_at)
        outcome = process_event(row_id, engine=self.engine, settings=self.settings).status
        self.report.outcomes[outcome] = self.report.outcomes.get(outcome, 0) + 1
        self.report.applied += outcome == "processed"
        self.report.failed += outcome in REPLAYABLE_STATUSES

    def _store(self, event_id: str, payment: dict[str, Any], read_at: dt.datetime) -> str:
        """The payment's state as one inbox row; its `occurredAt` is when the API was read (the time of the
        facts it implies: a deletion seen by the backfill is as old as that read)."""
        payload: dict[str, Any] = {"id": event_id, "event": EVENT_TYPE, "payment": payment}
        installment_id = payment.get("installment")
        if installment_id:  # the purchase behind an installment payment (its total, count, state)
            if installment_id not in self.installments:
                self.installments[installment_id] = self.api.get_installment(installment_id)
            payload["installment"] = self.installments[installment_id]
        new = inbox.NewEvent(SYNC_PROVIDER, event_id, EVENT_TYPE, json.dumps(payload), read_at)
        with self.engine.begin() as connection:
            stored = inbox.store_many(connection, [new])
        if new.key in stored:
            self.report.stored += 1
            return stored[new.key]
        with self.engine.connect() as connection:  # a concurrent run stored it first
            found = inbox.find_by_event_id(connection, SYNC_PROVIDER, event_id)
        if found is None:  # neither stored nor there: the insert's conflict was with a row deleted since
            raise RuntimeError(f"Asaas payment event {event_id} was neither stored nor found")
        return found[0]
