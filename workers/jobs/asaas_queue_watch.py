"""Queue watch: notice when Asaas has paused our webhook queue, and (if allowed) resume it and backfill.

After 15 consecutive failed deliveries Asaas marks the webhook `interrupted` and keeps new events queued,
unsent, deleting those older than 14 days; nothing tells us but an e-mail. This job reads the account's
webhooks (`GET /webhooks`), finds ours (`ASAAS_WEBHOOK_ID`, else `ASAAS_WEBHOOK_URL`, else the only one whose
URL ends in `/webhooks/asaas`), publishes `interrupted` and `penalizedRequestsCount` as gauges and logs a
warning. With `ASAAS_RESUME_QUEUE=true`, and only when our receiver answers `/readyz` (resuming into a broken
receiver pauses the queue again after 15 more failures), it sets `interrupted: false` and then backfills
payments from the last delivery we stored, which covers whatever the 14-day limit dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import Engine

from ingest.broker import asaas_queue_state
from ingest.config.database import default_engine
from ingest.config.settings import Settings, get_settings
from models import inbox
from workers.handlers.asaas_sync import EVENT_TYPE
from workers.jobs.payment_sync import SAO_PAULO, PaymentSyncReport, resync_payments, today_in_sao_paulo
from workers.jobs.runner import Job, run_job
from workers.providers.asaas_api import AsaasApi, AsaasApiError, AsaasUnauthorized, api_from_settings

log = logging.getLogger(__name__)

RECEIVER_PATH = "/webhooks/asaas"
JOB = Job("asaas_queue_watch", "asaas queue watch", log)


@dataclass
class QueueWatchReport:
    # ok | skipped_no_key | skipped_locked | not_found | interrupted | resumed | unauthorized | failed
    status: str = "ok"
    webhook_id: str | None = None
    interrupted: bool = False
    penalized: int = 0
    backfill: PaymentSyncReport | None = None


def find_ours(webhooks: list[dict[str, Any]], settings: Settings) -> dict[str, Any] | None:
    if settings.asaas_webhook_id:
        return next((hook for hook in webhooks if hook.get("id") == settings.asaas_webhook_id), None)
    if settings.asaas_webhook_url:
        url = settings.asaas_webhook_url.rstrip("/")
        return next((hook for hook in webhooks if str(hook.get("url") or "").rstrip("/") == url), None)
    candidates = [hook for hook in webhooks if str(hook.get("url") or "").rstrip("/").endswith(RECEIVER_PATH)]
    return candidates[0] if len(candidates) == 1 else None


def receiver_ready(settings: Settings) -> bool:
    if not settings.receiver_ready_url:
        log.warning("asaas queue watch: RECEIVER_READY_URL is not set; not resuming the queue")
        return False
    try:
        return requests.get(settings.receiver_ready_url, timeout=settings.ready_timeout + 3).status_code == 200
    except requests.RequestException:
        return False


def outage_start(engine: Engine, settings: Settings) -> dt.date:
    """The São Paulo date of the last Asaas delivery we stored, less a day (date-granular filters)."""
    with engine.connect() as connection:
        last = inbox.last_received(connection, "asaas", EVENT_TYPE)
    if last is None:
        return today_in_sao_paulo() - dt.timedelta(days=settings.payment_sync_lookback_days)
    return last.replace(tzinfo=dt.UTC).astimezone(SAO_PAULO).date() - dt.timedelta(days=1)


def watch_asaas_queue(
    *, settings: Settings | None = None, engine: Engine | None = None, api: AsaasApi | None = None
) -> QueueWatchReport:
    settings = settings or get_settings()
    report = QueueWatchReport()
    api = api or api_from_settings(settings, budget=settings.asaas_api_budget)
    if api is None:
        return run_job(JOB, report, lambda: None, missing_key="ASAAS_API_KEY")
    asaas = api
    engine = engine or default_engine()
    return run_job(JOB, report, lambda: _watch(report, settings, engine, asaas), engine=engine)


def _watch(report: QueueWatchReport, settings: Settings, engine: Engine, api: AsaasApi) -> None:
    try:
        webhooks = list(api.webhooks())
    except AsaasUnauthorized as error:
        log.error("asaas queue watch stopped: %s", error)
        report.status = "unauthorized"
        return
    except AsaasApiError as error:
        log.error("asaas queue watch failed: %s", error)
        report.status = "failed"
        return
    ours = find_ours(webhooks, settings)
    if ours is None:
        log.warning(
            "asaas queue watch: none of the account's %d webhooks is ours (set ASAAS_WEBHOOK_ID or ASAAS_WEBHOOK_URL)",
            len(webhooks),
        )
        report.status = "not_found"
        return
    report.webhook_id = str(ours.get("id"))
    report.interrupted = bool(ours.get("interrupted"))
    report.penalized = int(ours.get("penalizedRequestsCount") or 0)
    observation = {"webhook_id": report.webhook_id, "interrupted": report.interrupted, "penalized": report.penalized}
    asaas_queue_state.save(api.limiter.redis, observation, ttl=3 * settings.asaas_queue_watch_interval)
    if not report.interrupted:
        if report.penalized:
            log.warning("asaas webhook deliveries are failing", extra=observation)
        return
    log.warning("asaas has paused our webhook queue (interrupted): events are held, not delivered", extra=observation)
    report.status = "interrupted"
    if settings.asaas_resume_queue and receiver_ready(settings):
        _resume(report, settings, engine, api)
    elif settings.asaas_resume_queue:
        log.warning("asaas queue left paused: the receiver is not ready", extra=observation)


def _resume(report: QueueWatchReport, settings: Settings, engine: Engine, api: AsaasApi) -> None:
    since = outage_start(engine, settings)
    try:
        api.resume_webhook(report.webhook_id or "")
    except AsaasApiError as error:
        log.error("asaas queue resume failed: %s", error)
        return
    report.status = "resumed"
    asaas_queue_state.save(
        api.limiter.redis,
        {"webhook_id": report.webhook_id, "interrupted": False, "penalized": report.penalized},
        ttl=3 * settings.asaas_queue_watch_interval,
    )
    log.warning("asaas webhook queue resumed; backfilling payments", extra={"since": since.isoformat()})
    report.backfill = resync_payments(since=since, settings=settings, engine=engine, api=api)
