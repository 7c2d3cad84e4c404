"""The inbox (`WebhookEvent`), one package: `rows` stores, locks and marks rows on the hot path, `maintenance`
claims stranded rows for the sweeper and drops old payloads, `replay` finds and resets rows for a replay,
`queries` reads them for workers, jobs and the CLI, `browser` pages through them for the console."""

from models.inbox.maintenance import claim_lost, claim_stranded, drop_old_payloads, touch_enqueued
from models.inbox.queries import (
    backlog,
    enqueued_untouched_since,
    find,
    find_by_event_id,
    get,
    last_received,
    summary,
)
from models.inbox.replay import ReplayTargets, replayable_ids, reset_for_replay, reset_references, resolve_references
from models.inbox.rows import (
    LockedEvent,
    NewEvent,
    count_lost_attempt,
    finish,
    lock,
    lock_if_free,
    mark_received_many,
    record_failure,
    store_many,
)

__all__ = [
    "LockedEvent",
    "NewEvent",
    "ReplayTargets",
    "backlog",
    "claim_lost",
    "claim_stranded",
    "count_lost_attempt",
    "drop_old_payloads",
    "enqueued_untouched_since",
    "find",
    "find_by_event_id",
    "finish",
    "get",
    "last_received",
    "lock",
    "lock_if_free",
    "mark_received_many",
    "record_failure",
    "replayable_ids",
    "reset_for_replay",
    "reset_references",
    "resolve_references",
    "store_many",
    "summary",
    "touch_enqueued",
]
