"""Inbox retention: drop payloads of events that are done, after `PAYLOAD_RETENTION_DAYS`.

Payloads carry personal data (emails, names); once an event is processed its effects live in the domain
tables, so the body is no longer needed. The row stays: its (provider, eventId) key still stops a late
redelivery from being applied again. Batches of short transactions, under a job lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from ingest.config.database import default_engine
from models import inbox
from models.base import utcnow
from workers.jobs.runner import Job, run_job

log = logging.getLogger(__name__)

JOB = Job("retention", "retention", log)


@dataclass
class RetentionReport:
    status: str = "done"  # done | skipped_locked
    pruned: int = 0


def prune_payloads(*, days: float, engine: Engine | None = None, batch: int = 5000) -> RetentionReport:
    """Null the payload of every processed/ignored event processed more than `days` ago."""
    engine = engine or default_engine()
    report = RetentionReport()
    cutoff = utcnow() - dt.timedelta(days=days)
    return run_job(JOB, report, lambda: _prune(engine, cutoff, batch, report), engine=engine)


def _prune(engine: Engine, cutoff: dt.datetime, batch: int, report: RetentionReport) -> None:
    while True:
        with engine.begin() as connection:
            changed = inbox.drop_old_payloads(connection, cutoff, batch)
        report.pruned += changed
        if changed < batch:
            return
