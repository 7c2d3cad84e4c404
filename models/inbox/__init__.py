"""The inbox (`WebhookEvent`), one package: `rows` writes and locks rows (the only writer), `queries`
reads them for workers, jobs and the CLI, `browser` pages through them for the console."""

from models.inbox.queries import (
    backlog,
    enqueued_untouched_since,
    find,
    find_by_event_id,
    get,
    last_received,
    resolve_references,
    summary,
)
from models.inbox.rows import (
    LockedEvent,
    NewEvent,
    claim_lost,
    claim_stranded,
    count_lost_attempt,
    drop_old_payloads,
    finish,
    lock,
    lock_if_free,
    mark_received_many,
    record_failure,
    reset_for_replay,
    store_many,
    touch_enqueued,
)

__all__ = [
    "LockedEvent",
    "NewEvent",
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
    "reset_for_replay",
    "resolve_references",
    "store_many",
    "summary",
    "touch_enqueued",
]
