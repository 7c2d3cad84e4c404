"""Worker observability: the per-event JSON log line, the processing metrics and the worker's `/metrics`.

`event_finished` is called once per processing attempt with the row's identity and timing as the
processing transaction saw them (no query of its own on the hot path); only when that transaction never
read the row (database down, row missing) does it look the row up, best effort.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import setup_logging, worker_init, worker_process_shutdown, worker_shutdown
from sqlalchemy import Engine

from ingest.observability import metrics
from ingest.observability.event_types import event_type_label
from ingest.observability.logs import configure_logging
from models import inbox

log = logging.getLogger("pedro_ingest.event")
LAGGED_OUTCOMES = frozenset({"processed", "ignored"})


def event_finished(engine: Engine, row_id: str, outcome: str, attempt: int, duration_s: float, row: Any = None) -> None:
    """One log line and the metrics for one attempt; never raises (observability must not fail work).

    `row`: anything with provider, eventId, eventType, receivedAt, processedAt (the locked inbox row).
    """
    if row is None:
        try:
            with engine.connect() as connection:
                row = inbox.summary(connection, row_id)
        except Exception:
            pass  # the database is down: the line is still written, with what we know
    provider = metrics.label(row.provider if row else None)
    event_type = metrics.label(row.eventType if row else None)
    fields: dict[str, object] = {
        "event_row": row_id,
        "provider": provider,
        "event_id": row.eventId if row else None,
        "event_type": event_type,
        "outcome": outcome,
        "attempt": attempt,
        "duration_ms": round(duration_s * 1000, 2),
    }
    type_label = event_type_label(row.eventType if row else None)
    metrics.EVENTS_PROCESSED.labels(provider, type_label, outcome).inc()
    metrics.EVENT_DURATION.labels(provider).observe(duration_s)
    if outcome == "retry":
        metrics.EVENT_RETRIES.labels(provider, type_label).inc()
    if row is not None and outcome in LAGGED_OUTCOMES and row.processedAt and row.receivedAt:
        lag = max(0.0, (row.processedAt - row.receivedAt).total_seconds())
        metrics.PROCESSING_LAG.labels(provider).observe(lag)
        fields["lag_ms"] = round(lag * 1000, 2)
    log.info("event %s", outcome, extra=fields)


@setup_logging.connect
def _logging(**_: object) -> None:
    """Celery leaves logging to us: the same JSON/text lines as the receiver."""
    from ingest.config.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


@worker_init.connect
def _serve_metrics(**_: object) -> None:
    """The worker's main process serves every pool process's samples on WORKER_METRICS_PORT."""
    from prometheus_client import start_http_server

    from ingest.config.settings import get_settings

    settings = get_settings()
    port = settings.worker_metrics_port
    if not port:
        return
    registry = metrics.process_registry()
    registry.register(asaas_queue_collector(settings.celery_broker_url, settings.ready_timeout))
    try:
        start_http_server(port, addr=settings.worker_metrics_host, registry=registry)
        log.info("worker metrics on port %s", port)
    except OSError as error:  # another worker on this host has the port: work goes on without it
        log.warning(
            "worker metrics not served: cannot listen on %s:%s (%s); set WORKER_METRICS_PORT to a free port (0: none)",
            settings.worker_metrics_host, port, error.strerror,
        )  # fmt: skip


def asaas_queue_collector(broker_url: str, timeout: float) -> metrics.ScrapeTimeCollector:
    """The Asaas queue watch's last observation (from Redis), also on the workers' `/metrics`."""
    from ingest.broker import asaas_queue_state

    return metrics.ScrapeTimeCollector({"asaas_queue": lambda: asaas_queue_state.gauges(broker_url, timeout)})


@worker_process_shutdown.connect
def _pool_process_gone(pid: int | None = None, **_: object) -> None:
    metrics.mark_process_dead(pid or os.getpid())


@worker_shutdown.connect
def _worker_gone(**_: object) -> None:
    metrics.remove_owned_multiproc_dir()
