"""The one way a periodic job runs: skip without its API key, hold its advisory lock or skip, log its report
and count the run.

Every job is safe to start twice at once (a second beat, a CLI run during a scheduled one, a redelivered
task): the second finds the lock held and says `skipped_locked` rather than doubling the work. The job's body
sets any other status (`done` by default) on its own report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import Engine

from ingest.observability import metrics
from models.locks import try_job_lock

SKIPPED_NO_KEY = "skipped_no_key"
SKIPPED_LOCKED = "skipped_locked"
SKIPPED = (SKIPPED_NO_KEY, SKIPPED_LOCKED)


@dataclass(frozen=True)
class Job:
    """`name` keys the advisory lock and the metric's `job` label; `title` starts the job's log lines, written
    to the job module's own `logger`."""

    name: str
    title: str
    logger: logging.Logger


class JobReport(Protocol):
    status: str


R = TypeVar("R", bound=JobReport)


def run_job(
    job: Job,
    report: R,
    work: Callable[[], None],
    *,
    engine: Callable[[], Engine] | Engine | None = None,
    missing_key: str | None = None,
    when_locked: Callable[[], None] | None = None,
) -> R:
    """Run `work` (which fills `report`) under the job's lock, or record why it was skipped.

    `missing_key`: the setting whose absence means the job cannot run (checked first, without a database).
    `engine`: the engine, or a callable giving it (so a skip without a key opens nothing); None runs unlocked
    (a one-user reconcile, say). `when_locked`: called when another run holds the lock."""
    if missing_key is not None:
        job.logger.info("%s skipped: %s is not set", job.title, missing_key)
        report.status = SKIPPED_NO_KEY
    elif engine is None:
        work()
    else:
        with try_job_lock(engine() if callable(engine) else engine, job.name) as held:
            if held:
                work()
            else:
                if when_locked is not None:
                    when_locked()
                job.logger.info("%s skipped: another run holds the lock", job.title)
                report.status = SKIPPED_LOCKED
    if report.status not in SKIPPED:
        job.logger.info("%s %s", job.title, report.status, extra=summary(report))
    metrics.JOB_RUNS.labels(job.name, report.status).inc()
    return report


def summary(report: JobReport) -> dict[str, object]:
    """The report's plain fields, for the log line (lists of rows and nested reports stay out)."""
    return {
        key: value
        for key, value in vars(report).items()
        if value is None or isinstance(value, (str, int, float, bool, dict))
    }
