"""Replay's data side: which rows an operator's references name, and putting them back to `received` with a
fresh attempt budget (`failed`, `dead`, and `ignored` by a policy with a reason). Publishing them is the
broker's side (`ingest.broker.replay`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.inbox.queries import find
from models.status import FINAL_STATUSES, REPLAYABLE_STATUSES, EventStatus
from models.tables import WebhookEvent

_FINAL = sorted(status.value for status in FINAL_STATUSES)


@dataclass
class ReplayTargets:
    """The rows found for the references, each one's status before the reset, and the references that
    matched nothing."""

    row_ids: list[str] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def reset_references(session: Session, references: list[str]) -> ReplayTargets:
    """Find the rows the references name (see `resolve_references`) and reset them for replay, locked."""
    resolved = resolve_references(session, references)
    row_ids = list(dict.fromkeys(row_id for ids in resolved.values() for row_id in ids))
    before = reset_for_replay(session, row_ids) if row_ids else {}
    return ReplayTargets(row_ids, before, [reference for reference in references if reference not in resolved])


def replayable_ids(
    session: Session, *, status: EventStatus, since: dt.datetime | None, event_type: str | None, limit: int
) -> list[str]:
    """Row ids of the `failed` or `dead` rows matching the filters."""
    if status not in REPLAYABLE_STATUSES:
        raise ValueError("only failed or dead events are replayed by status")
    return [row.id for row in find(session, status=status, event_type=event_type, since=since, limit=limit)]


_BY_ID = text(
    """SELECT id FROM "WebhookEvent"
        WHERE id = :ref  -- the two indexes, never a scan
           OR (provider IN ('clerk', 'asaas', 'asaas-sync') AND "eventId" = :ref)
        ORDER BY "receivedAt" """
)
_BY_PAYMENT = text(
    """SELECT id FROM "WebhookEvent" WHERE provider IN ('asaas', 'asaas-sync') AND payload -> 'payment' ->> 'id' = :ref
        ORDER BY "receivedAt" """
)


def resolve_references(session: Session, references: list[str]) -> dict[str, list[str]]:
    """Row ids for what an operator has in hand: the row id, the provider's event id (`evt_…`, `msg_…`), or
    an Asaas payment id (every event of that payment). References that match nothing are left out."""
    found: dict[str, list[str]] = {}
    for reference in references:
        row_ids = list(session.execute(_BY_ID, {"ref": reference}).scalars()) or list(
            session.execute(_BY_PAYMENT, {"ref": reference}).scalars()
        )
        if row_ids:
            found[reference] = row_ids
    return found


def reset_for_replay(session: Session, row_ids: list[str]) -> dict[str, str]:
    """Make `failed`/`dead` (and pending) rows pending again with a fresh attempt budget.

    Returns each found row's status before the reset; final rows (`processed`, `ignored`) are not touched,
    so replaying them is a no-op, except rows `ignored` by a policy with a reason (`lastError`, e.g. an
    unlinked payment): those are replayed like failed ones once the link exists. Rows go back to
    `received`: if the enqueue that follows fails, the sweeper still finds them.
    """
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.status, WebhookEvent.lastError)
        .where(WebhookEvent.id.in_(row_ids))
        .with_for_update()
    ).all()
    before = {row.id: row.status for row in rows}
    resettable = [
        row.id
        for row in rows
        if row.status not in _FINAL or (row.status == EventStatus.IGNORED.value and row.lastError is not None)
    ]
    before.update({row.id: f"ignored ({row.lastError})" for row in rows if row.status == EventStatus.IGNORED.value})
    if resettable:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(resettable))
            .values(status=EventStatus.RECEIVED.value, attempts=0, processedAt=None, updatedAt=utcnow())
        )
    return before
