"""Credit expiry: lots past their expiry leave the balance, one `CREDIT_EXPIRY` ledger row per lot.

The rules are in the database (`pedro_expire_lots`): balances locked first in id order, each lot expired
once, the balance lowered in the same transaction. This job only runs batches of it, under a job lock, and
adds what expired to the `pedro_ingest_credits_expired` counter.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from ingest.broker.run_reports import record_expiry
from ingest.config.database import default_engine
from ingest.config.settings import get_settings
from models.base import utcnow
from models.db import transaction
from models.ledger import lots
from models.locks import try_job_lock

log = logging.getLogger(__name__)

LOCK_NAME = "expire-credits"
BATCH = 5000  # lots per transaction: short row locks on balances, few round trips


@dataclass
class ExpiryReport:
    status: str = "done"  # done | skipped_locked
    lots: int = 0
    credits: int = 0


def expire_credits(
    *, engine: Engine | None = None, batch: int | None = None, now: dt.datetime | None = None, publish: bool = True
) -> ExpiryReport:
    """Expire every lot due by `now` (default: the current time), in batches of short transactions."""
    engine = engine or default_engine()
    batch = batch or BATCH
    due_before = now or utcnow()
    report = ExpiryReport()
    with try_job_lock(engine, LOCK_NAME) as held:
        if not held:
            report.status = "skipped_locked"
            log.info("credit expiry skipped: another run holds the lock")
            return report
        while True:
            with transaction(engine) as session:
                expired, credits = lots.expire_due(session, due_before=due_before, batch=batch)
            report.lots += expired
            report.credits += credits
            if expired == 0:
                break
    if publish and report.lots:
        _publish(report)
    log.info("credit expiry %s", report.status, extra=report.__dict__)
    return report


def _publish(report: ExpiryReport) -> None:
    settings = get_settings()
    try:
        record_expiry(settings.celery_broker_url, settings.celery_queue, lots=report.lots, credits=report.credits,
                      timeout=settings.ready_timeout)  # fmt: skip
    except Exception as error:  # the ledger rows stand; only the counter misses this run
        log.warning("credit expiry not counted for /metrics: %s", type(error).__name__)
