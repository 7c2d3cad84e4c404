"""The stranded-event sweeper: re-enqueues inbox rows that no queued task will ever apply.

Two ways a row is stranded: it stayed `received` because the broker was down when it arrived, or it is
`enqueued` but nothing touched it for `SWEEP_STUCK_AFTER` seconds (Redis lost the task in a restart, or
the worker holding it died). Re-enqueueing a row that still has a live task is harmless: the worker's row
lock and its processed check apply the effects once. Safe to run concurrently with itself (rows are
claimed with `FOR UPDATE SKIP LOCKED`) and with workers (a row being applied is locked, so it is skipped).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from ingest.broker.publisher import Publisher
from models import inbox
from models.base import utcnow
from models.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    enqueued: int
    broker_down: bool


def sweep(
    engine: Engine, publisher: Publisher, *, received_after: float, stuck_after: float, batch: int
) -> SweepResult:
    """Re-enqueue every stranded row, batch by batch; stops early (and says so) when the broker is down."""
    started = utcnow()
    received_before = started - dt.timedelta(seconds=received_after)
    stuck_before = started - dt.timedelta(seconds=stuck_after)
    enqueued = 0
    while True:
        with transaction(engine) as session:
            claimed = inbox.claim_stranded(
                session, received_before=received_before, stuck_before=stuck_before, limit=batch
            )
            sent: list[str] = []
            for row_id in claimed:
                if not publisher.publish(row_id):
                    break
                sent.append(row_id)
            # Touched rows get a fresh `updatedAt` (after `started`), so the next batch cannot claim them again.
            inbox.touch_enqueued(session, sent)
        enqueued += len(sent)
        if len(sent) < len(claimed):
            log.warning("sweep stopped: broker unreachable", extra={"enqueued": enqueued})
            return SweepResult(enqueued=enqueued, broker_down=True)
        if len(claimed) < batch:
            if enqueued:
                log.info("sweep re-enqueued stranded events", extra={"enqueued": enqueued})
            return SweepResult(enqueued=enqueued, broker_down=False)
