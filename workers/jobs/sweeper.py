"""The stranded-event sweeper: re-enqueues inbox rows that no queued task will ever apply.

Three ways a row is stranded:
- it stayed `received` because the broker was down when it arrived (`SWEEP_RECEIVED_AFTER`);
- it is `enqueued` but the broker holds no message for it any more, neither queued nor reserved by a
  worker: a Redis restart without persistence, a failover to a replica behind on writes, a flush. The
  broker is asked (`ingest.broker.inventory`) about rows untouched for `SWEEP_LOST_AFTER`, so such rows come
  back within one or two sweep intervals, and a row whose message is still queued or being worked on is
  left alone;
- it is `enqueued` and untouched for `SWEEP_STUCK_AFTER` whatever the broker says (the last resort, e.g. a
  message reserved by a worker that died, until Redis's visibility timeout hands it out again).

Re-enqueueing a row that still has a live task is harmless anyway: the worker's row lock and its processed
check apply the effects once. Safe to run concurrently with itself (rows are claimed with `FOR UPDATE SKIP
LOCKED`) and with workers (a row being applied is locked, so it is skipped).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ingest.broker.publisher import Publisher
from models import inbox
from models.base import utcnow
from models.db import transaction

log = logging.getLogger(__name__)

MAX_LOST_CANDIDATES = 100_000  # rows compared with the broker per sweep (memory stays bounded)


class Inventory(Protocol):
    """What the broker holds (see `ingest.broker.inventory.BrokerInventory`)."""

    def missing(self, row_ids: list[str]) -> set[str]: ...


@dataclass(frozen=True)
class SweepResult:
    enqueued: int
    broker_down: bool
    lost: int = 0  # of `enqueued`: rows whose message the broker had lost


def sweep(
    engine: Engine,
    publisher: Publisher,
    *,
    received_after: float,
    stuck_after: float,
    batch: int,
    inventory: Inventory | None = None,
    lost_after: float | None = None,
) -> SweepResult:
    """Re-enqueue every stranded row, batch by batch; stops early (and says so) when the broker is down."""
    started = utcnow()
    received_before = started - dt.timedelta(seconds=received_after)
    stuck_before = started - dt.timedelta(seconds=stuck_after)

    def stranded(session: Session, _: list[str]) -> list[str]:
        return inbox.claim_stranded(session, received_before=received_before, stuck_before=stuck_before, limit=batch)

    enqueued, broker_down = _republish(engine, publisher, stranded, itertools.repeat([]), batch)
    lost = 0
    if inventory is not None and lost_after is not None and not broker_down:
        lost, broker_down = _recover_lost(engine, publisher, inventory, started, lost_after, batch)
    if broker_down:
        log.warning("sweep stopped: broker unreachable", extra={"enqueued": enqueued + lost})
    elif lost:  # the broker lost data: worth an operator's attention even when healed
        log.warning(
            "sweep re-enqueued events the broker had lost", extra={"enqueued": enqueued + lost, "lost_by_broker": lost}
        )
    elif enqueued:
        log.info("sweep re-enqueued stranded events", extra={"enqueued": enqueued})
    return SweepResult(enqueued=enqueued + lost, broker_down=broker_down, lost=lost)


def _recover_lost(
    engine: Engine, publisher: Publisher, inventory: Inventory, started: dt.datetime, lost_after: float, batch: int
) -> tuple[int, bool]:
    """Rows `enqueued`, untouched for `lost_after`, that the broker neither queues nor has handed out."""
    untouched_since = started - dt.timedelta(seconds=lost_after)
    with engine.connect() as connection:
        candidates = inbox.enqueued_untouched_since(connection, untouched_since, MAX_LOST_CANDIDATES)
    if not candidates:
        return 0, False
    try:
        missing = inventory.missing(candidates)
    except redis.RedisError:
        return 0, True
    ordered = [row_id for row_id in candidates if row_id in missing]
    chunks = [ordered[i : i + batch] for i in range(0, len(ordered), batch)]

    def lost(session: Session, chunk: list[str]) -> list[str]:
        return inbox.claim_lost(session, chunk, untouched_since=untouched_since)

    return _republish(engine, publisher, lost, chunks, batch)


def _republish(
    engine: Engine,
    publisher: Publisher,
    claim: Callable[[Session, list[str]], list[str]],
    chunks: Iterable[list[str]],
    batch: int,
) -> tuple[int, bool]:
    """Claim, publish and touch chunk by chunk; (rows enqueued, broker down). An empty chunk means
    `claim by condition`: repeated until a claim comes back short."""
    enqueued = 0
    for chunk in chunks:
        with transaction(engine) as session:
            claimed = claim(session, chunk)
            sent: list[str] = []
            for row_id in claimed:
                if not publisher.publish(row_id):
                    break
                sent.append(row_id)
            # Touched rows get a fresh `updatedAt` (after `started`), so the next batch cannot claim them again.
            inbox.touch_enqueued(session, sent)
        enqueued += len(sent)
        if len(sent) < len(claimed):
            return enqueued, True
        if not chunk and len(claimed) < batch:
            break
    return enqueued, False
