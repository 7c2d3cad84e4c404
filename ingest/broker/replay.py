"""Replay: make `failed` / `dead` events (and events ignored by a policy, with their reason) pending again
(fresh attempt budget) and hand them to the workers. Operators name them by row id, provider event id or
payment id.

Replaying an event that is already `processed` or `ignored` changes nothing: effects happen once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ingest.broker.publisher import Publisher
from models import inbox
from models.db import transaction
from models.status import FINAL_STATUSES, EventStatus


@dataclass
class ReplayResult:
    enqueued: list[str] = field(default_factory=list)
    not_enqueued: list[str] = field(default_factory=list)  # reset to `received`; the sweeper enqueues them later
    already_final: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def replay_ids(engine: Engine, publisher: Publisher, references: list[str]) -> ReplayResult:
    """Replay the rows named by row id, provider event id or Asaas payment id (see `resolve_references`)."""
    with transaction(engine) as session:
        targets = inbox.reset_references(session, references)
    result = ReplayResult(missing=targets.missing)
    result.already_final = {row_id: status for row_id, status in targets.before.items() if status in FINAL_STATUSES}
    for row_id in targets.row_ids:
        if row_id not in targets.before or row_id in result.already_final:
            continue
        (result.enqueued if publisher.publish(row_id) else result.not_enqueued).append(row_id)
    if result.enqueued:
        with transaction(engine) as session:
            inbox.touch_enqueued(session, result.enqueued)
    return result


def replay_matching(
    engine: Engine,
    publisher: Publisher,
    *,
    status: EventStatus,
    since: dt.datetime | None = None,
    event_type: str | None = None,
    limit: int = 10_000,
) -> ReplayResult:
    """Replay every `failed` or `dead` row matching the filters."""
    with transaction(engine) as session:
        row_ids = inbox.replayable_ids(session, status=status, since=since, event_type=event_type, limit=limit)
    return replay_ids(engine, publisher, row_ids)
