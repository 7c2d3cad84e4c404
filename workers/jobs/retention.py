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
from models.locks import try_job_lock

log = logging.getLogger(__name__)

LOCK_NAME = "retention"


@dataclass
class RetentionReport:
    status: str = "done"  # done | skipped_locked
    pruned: int = 0


def prune_payloads(*, days: float, engine: Engine | None = None, batch: int = 5000) -> RetentionReport:
    """Null the payload of every processed/ignored event processed more than `days` ago."""
    engine = engine or default_engine()
    report = RetentionReport()
    cutoff = utcnow() - dt.timedelta(days=days)
    with try_job_lock(engine, LOCK_NAME) as held:
        if not held:
            report.status = "skipped_locked"
            log.info("retention skipped: another run holds the lock")
            return report
        while True:
            with engine.begin() as connection:
                changed = inbox.drop_old_payloads(connection, cutoff, batch)
            report.pruned += changed
            if changed < batch:
                break
    log.info("retention %s", report.status, extra=report.__dict__)
    return report
