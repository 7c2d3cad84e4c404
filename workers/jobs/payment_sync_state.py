"""Where the payment backfill stands, in Redis: the position of an unfinished run, the last covered date,
and a window someone asked for while a run was busy.

All of it is an optimisation, never a correctness requirement: losing it (a Redis flush) only makes the
next run start over on the default window, and every payment is applied through keys that make a repeat
a no-op.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import redis

PREFIX = "pedro:asaas:payment_sync"


@dataclass(frozen=True)
class Cursor:
    """A run: its window, the first pass/offset not yet applied, and the São Paulo date it started on."""

    since: str
    status_since: str
    pass_index: int
    offset: int
    started_on: str


class SyncState:
    def __init__(self, client: redis.Redis, prefix: str = PREFIX) -> None:
        self.redis = client
        self.prefix = prefix

    def cursor(self) -> Cursor | None:
        raw = self.redis.get(f"{self.prefix}:cursor")
        if not raw:
            return None
        try:
            return Cursor(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    def save_cursor(self, cursor: Cursor) -> None:
        self.redis.set(f"{self.prefix}:cursor", json.dumps(asdict(cursor)))

    def watermark(self) -> dt.date | None:
        """The São Paulo date on which the last complete run started."""
        return _date(self.redis.get(f"{self.prefix}:watermark"))

    def pending(self) -> dt.date | None:
        return _date(self.redis.get(f"{self.prefix}:pending_since"))

    def request(self, since: dt.date) -> None:
        """Ask the next run to cover back to `since` (the earliest request wins)."""
        current = self.pending()
        if current is None or since < current:
            self.redis.set(f"{self.prefix}:pending_since", since.isoformat())

    def finish(self, started_on: dt.date, covered_since: dt.date) -> None:
        """A run covered `covered_since`..now: forget its position and any request it satisfied."""
        self.redis.delete(f"{self.prefix}:cursor")
        self.redis.set(f"{self.prefix}:watermark", started_on.isoformat())
        pending = self.pending()
        if pending is not None and pending >= covered_since:
            self.redis.delete(f"{self.prefix}:pending_since")


def _date(raw: bytes | str | None) -> dt.date | None:
    """A stored ISO date (bytes from a client without `decode_responses`), or None when unset."""
    if not raw:
        return None
    return dt.date.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
