"""Which inbox rows the broker still holds a message for, read from kombu's Redis keys.

A message is *queued* (in the event queue's lists, one per priority step) or *reserved* (kombu's `unacked`
hash: handed to a worker and not yet acknowledged, which includes retries a worker holds until their
countdown ends). A row `enqueued` in PostgreSQL whose id is in neither was lost by the broker (a restart
without persistence, a failover to a replica behind on writes, a flush), and only re-enqueueing brings it
back. Reading the broker itself answers for every way of losing data; an epoch marker or Redis's `run_id`
would miss a partial loss (replica behind) and `run_id` would also flag restarts that lost nothing.

A message moves from the list to the hash through the worker's memory (BRPOP, then HSET), so one read can
miss it; callers read twice and act only on ids absent both times (`missing`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ingest.broker import task_names
from ingest.broker.redis_client import PRIORITY_SUFFIXES, redis_client

UNACKED_KEY = "unacked"  # kombu's Redis transport default (`unacked_key`)
_PAGE = 1000


def _row_ids(envelope: Any) -> Iterator[str]:
    """The inbox row ids a task message carries (`process_event(id)` or `process_events([ids])`)."""
    try:
        task = envelope["headers"]["task"]
        if task not in (task_names.PROCESS_EVENT, task_names.PROCESS_EVENTS):
            return
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return  # not one of our task messages
    if task == task_names.PROCESS_EVENT and args and isinstance(args[0], str):
        yield args[0]
    elif task == task_names.PROCESS_EVENTS and args and isinstance(args[0], list):
        yield from (row_id for row_id in args[0] if isinstance(row_id, str))


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class BrokerInventory:
    """Reads the queue's lists, then the `unacked` hash, in pages (the broker is never blocked for long)."""

    def __init__(self, broker_url: str, queue: str, *, timeout: float = 5.0) -> None:
        self.queue = queue
        self._redis = redis_client(broker_url, timeout)

    def held(self) -> set[str]:
        """Row ids with a message queued or reserved right now. Raises `redis.RedisError` when unreachable.

        The lists first: a message popped meanwhile is in the hash by the time the hash is read.
        """
        held: set[str] = set()
        for suffix in PRIORITY_SUFFIXES:
            start = 0  # LPUSH shifts indexes up and BRPOP takes from the tail: paging may repeat, never skip
            while page := self._redis.lrange(self.queue + suffix, start, start + _PAGE - 1):
                held.update(row_id for message in page for row_id in _row_ids(_loads(message)))
                start += _PAGE
        for _, entry in self._redis.hscan_iter(UNACKED_KEY, count=_PAGE):
            reserved = _loads(entry)  # [message, exchange, routing key]
            if isinstance(reserved, list) and reserved:
                held.update(_row_ids(reserved[0]))
        return held

    def missing(self, row_ids: Iterable[str]) -> set[str]:
        """The ids the broker holds no message for, in two reads (see the module docstring)."""
        absent = set(row_ids)
        for _ in range(2):
            if not absent:
                break
            absent -= self.held()
        return absent

    def close(self) -> None:
        self._redis.close()
