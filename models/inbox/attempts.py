"""The worker's processing transaction on an inbox row, in two round trips (`models.db.Trips`): open it
with the row lock, close it with the row's mark and the COMMIT. The statements are `rows`'."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from models.db import Trips
from models.inbox.rows import FINISH_ROW, LOCK_ROW, LockedEvent, marked
from models.status import EventStatus

_BOUND_LOCK = text(
    "SELECT set_config('lock_timeout', :lock_timeout, true),"
    " set_config('statement_timeout', :statement_timeout, true); " + LOCK_ROW.text
)


def open_and_lock(trips: Trips, row_id: str, *, lock_timeout_ms: int, statement_timeout_ms: int) -> LockedEvent | None:
    """Begin the transaction, bound it (`SET LOCAL` lock and statement timeouts: a row held elsewhere or a
    runaway statement ends the attempt) and lock the row until the transaction ends, in one round trip."""
    params = {"id": row_id, "lock_timeout": f"{lock_timeout_ms}ms", "statement_timeout": f"{statement_timeout_ms}ms"}
    row: Any = trips.open(_BOUND_LOCK, params).one_or_none()
    return LockedEvent(*row) if row is not None else None


def finish_and_commit(
    trips: Trips, event: LockedEvent, status: EventStatus, reason: tuple[str, str] | None = None
) -> None:
    """`finish` for the row the transaction opened with, and the COMMIT, in one round trip."""
    trips.finish(FINISH_ROW, marked(event, status, reason))
