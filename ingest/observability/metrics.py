"""Prometheus metrics of the receiver and the workers, and how `/metrics` renders them.

Counters and histograms live here, one definition each, so that every process exports the same names.
Under gunicorn and Celery's prefork pool each process writes its samples to `PROMETHEUS_MULTIPROC_DIR`
(set up by `pedro-ingest serve` / `worker`), and the scrape merges them. Backlog gauges (queue depth,
oldest unprocessed event, dead letters) are read from PostgreSQL and Redis at scrape time, so they are
true whichever process answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNED_ENV = "PEDRO_METRICS_OWNED"
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))

WEBHOOKS_RECEIVED = Counter(
    "pedro_ingest_webhooks_received_total", "Authentic webhooks stored (new or duplicate).", ["provider", "event_type"]
)
WEBHOOKS_DUPLICATE = Counter(
    "pedro_ingest_webhooks_duplicate_total", "Redeliveries of an already stored event.", ["provider"]
)
WEBHOOKS_REJECTED = Counter(
    "pedro_ingest_webhooks_rejected_total", "Webhook requests refused, by reason.", ["provider", "reason"]
)
ENQUEUE_FAILURES = Counter(
    "pedro_ingest_enqueue_failures_total",
    "Stored events the broker did not accept (the sweeper sends them).",
    ["provider"],
)
EVENTS_PROCESSED = Counter(
    "pedro_ingest_events_processed_total", "Processing attempts by outcome.", ["provider", "event_type", "outcome"]
)
EVENT_RETRIES = Counter(
    "pedro_ingest_event_retries_total", "Attempts that will be retried.", ["provider", "event_type"]
)
PROCESSING_LAG = Histogram(
    "pedro_ingest_processing_lag_seconds", "From receipt to committed effect.", ["provider"], buckets=LAG_BUCKETS
)
EVENT_DURATION = Histogram("pedro_ingest_event_duration_seconds", "Time spent processing one attempt.", ["provider"])
JOB_RUNS = Counter("pedro_ingest_job_runs_total", "Periodic job runs by job and result.", ["job", "status"])

MAX_LABEL = 64


def label(value: str | None) -> str:
    """A bounded label value (event types come from authenticated payloads, but keep series sane)."""
    return (value or "unknown")[:MAX_LABEL]


class ScrapeTimeCollector:
    """Yields gauges computed by `read()` at scrape time; a failing source becomes `pedro_ingest_scrape_error`."""

    def __init__(self, sources: dict[str, Callable[[], Iterator[Metric]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "pedro_ingest_scrape_error", "1 when a backlog source did not answer.", labels=["source"]
        )
        for name, read in self.sources.items():
            try:
                yield from list(read())
                errors.add_metric([name], 0)
            except Exception:  # a scrape must never fail because a dependency is down
                errors.add_metric([name], 1)
        yield errors


class _ThisProcess:
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def process_registry() -> CollectorRegistry:
    """A registry with every process's samples (multiprocess mode) or this process's (tests, `--dev`)."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return registry


def render(extra: ScrapeTimeCollector | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type."""
    registry = process_registry()
    if extra is not None:
        registry.register(extra)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def prepare_multiproc_dir(base: str | None, role: str) -> str:
    """An empty directory for one process family's samples (`<base>/<role>`, or a temporary one); returns it.

    A temporary directory is marked as ours (`PEDRO_METRICS_OWNED`) so that `remove_owned_multiproc_dir`
    deletes it when the family stops; a configured one is only emptied at the next start.
    """
    import tempfile
    from pathlib import Path

    if base:
        directory = Path(base) / role
        os.environ.pop(OWNED_ENV, None)
    else:
        directory = Path(tempfile.mkdtemp(prefix=f"pedro-metrics-{role}-"))
        os.environ[OWNED_ENV] = "1"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return str(directory)


def ensure_multiproc_dir() -> None:
    """The configured sample directory exists (created if missing); if it cannot be, a temporary one is used.

    For a plain `gunicorn -c python:ingest.http.server.gunicorn_conf`, which `serve` does not prepare.
    """
    import sys
    import tempfile
    from pathlib import Path

    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fallback = tempfile.mkdtemp(prefix="pedro-metrics-receiver-")
        print(f"pedro-ingest: {MULTIPROC_ENV}={directory} cannot be created ({error.strerror}); using {fallback}",
              file=sys.stderr)  # fmt: skip
        os.environ[MULTIPROC_ENV] = fallback
        os.environ[OWNED_ENV] = "1"


def remove_owned_multiproc_dir() -> None:
    """At the end of the process family: delete the temporary sample directory we created."""
    import shutil

    directory = os.environ.get(MULTIPROC_ENV)
    if directory and os.environ.get(OWNED_ENV) == "1":
        shutil.rmtree(directory, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (gunicorn `child_exit`, Celery pool shutdown)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
