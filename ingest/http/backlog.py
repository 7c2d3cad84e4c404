"""Backlog gauges read at scrape time: queue depth, the oldest unprocessed event, dead letters.

These are facts about PostgreSQL and Redis, not about one process, so any receiver can report them and
an alert on "oldest unprocessed event older than N minutes" catches a stalled fleet or a lost broker.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine, text

from ingest.broker import asaas_queue_state
from ingest.broker import redis_client as broker
from ingest.broker.run_reports import expiry_totals, last_reconcile
from ingest.config.settings import Settings
from ingest.observability.metrics import ScrapeTimeCollector
from models import inbox
from models.status import NOT_FINAL_STATUSES, UNPROCESSED_STATUSES


def inbox_gauges(engine: Engine, timeout: float) -> Iterator[Metric]:
    with engine.begin() as connection:
        connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
        stats = inbox.backlog(connection)
    by_status = GaugeMetricFamily("pedro_ingest_inbox_events", "Inbox rows not final, by status.", labels=["status"])
    for status in NOT_FINAL_STATUSES:
        by_status.add_metric([status], stats.get(status, (0, 0.0))[0])
    yield by_status
    oldest = max((stats[s][1] for s in UNPROCESSED_STATUSES if s in stats), default=0.0)
    yield GaugeMetricFamily(
        "pedro_ingest_inbox_oldest_unprocessed_age_seconds",
        "Age of the oldest received/enqueued inbox row (0: none).",
        oldest,
    )
    dead = stats.get("dead", (0, 0.0))[0]
    yield GaugeMetricFamily("pedro_ingest_dead_letters", "Inbox rows that exhausted their retries.", dead)


def queue_gauges(settings: Settings, timeout: float) -> Iterator[Metric]:
    depth = broker.queue_depth(settings.celery_broker_url, settings.celery_queue, timeout)
    family = GaugeMetricFamily("pedro_ingest_queue_depth", "Tasks waiting on the broker queue.", labels=["queue"])
    family.add_metric([settings.celery_queue], depth)
    yield family


def reconcile_gauges(settings: Settings, timeout: float) -> Iterator[Metric]:
    """The last complete reconciliation, wherever it ran (beat's worker or `pedro-ingest reconcile`)."""
    last = last_reconcile(settings.celery_broker_url, settings.celery_queue, timeout)
    if last is None:
        return
    yield GaugeMetricFamily(
        "pedro_ingest_balance_drift_balances",
        "Balances off their ledger and left unfixed by the last reconciliation.",
        last["drifted_balances"],
    )
    yield GaugeMetricFamily(
        "pedro_ingest_balance_drift_credits",
        "Sum of |creditsRemaining - ledger| over those balances (0 when all were fixed).",
        last["drift_credits"],
    )
    yield GaugeMetricFamily(
        "pedro_ingest_reconcile_last_run_timestamp_seconds",
        "Unix time the last complete reconciliation ended.",
        last["finished_at"],
    )


def expiry_counters(settings: Settings, timeout: float) -> Iterator[Metric]:
    """Credits the expiry job has expired (ledger `CREDIT_EXPIRY` rows), wherever it ran."""
    totals = expiry_totals(settings.celery_broker_url, settings.celery_queue, timeout)
    yield CounterMetricFamily("pedro_ingest_credits_expired", "Credits expired with their lots.", totals["credits"])
    yield CounterMetricFamily("pedro_ingest_credit_lots_expired", "Credit lots expired.", totals["lots"])


def backlog_collector(engine: Engine, settings: Settings) -> ScrapeTimeCollector:
    timeout = settings.ready_timeout
    return ScrapeTimeCollector(
        {
            "database": lambda: inbox_gauges(engine, timeout),
            "broker": lambda: queue_gauges(settings, timeout),
            "asaas_queue": lambda: asaas_queue_state.gauges(settings.celery_broker_url, timeout),
            "reconcile": lambda: reconcile_gauges(settings, timeout),
            "credit_expiry": lambda: expiry_counters(settings, timeout),
        }
    )
