"""Hands stored events to the workers through the Redis broker, failing fast when it is down.

A failed publish is not an error for the sender: the row is durable and the sweeper enqueues it later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import redis

from ingest.broker import task_names
from ingest.broker.redis_client import redis_client
from ingest.broker.task_messages import task_message

if TYPE_CHECKING:
    from ingest.config.settings import Settings

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Anything that can hand one inbox row id to the workers (the sweeper and replay use it)."""

    def publish(self, row_id: str) -> bool: ...


class CeleryPublisher:
    """Sends `process_event(row_id)` / `process_events(row_ids)` by name with one LPUSH per message,
    so the receiver never imports worker code (see `ingest.broker.task_messages` for why not `send_task`)."""

    def __init__(self, broker_url: str, queue: str, *, timeout: float = 2.0) -> None:
        self.queue = queue
        self._redis = redis_client(broker_url, timeout)

    def publish(self, row_id: str) -> bool:
        """True when the broker accepted the task; False (logged) when it could not be reached."""
        return self._send(task_names.PROCESS_EVENT, [row_id])

    def publish_many(self, row_ids: list[str]) -> bool:
        """One task for a batch of ids (the receiver's group commit): the broker cost is paid once."""
        if len(row_ids) == 1:
            return self.publish(row_ids[0])
        return self._send(task_names.PROCESS_EVENTS, [row_ids])

    def _send(self, task_name: str, args: list) -> bool:
        try:
            self._redis.lpush(self.queue, task_message(task_name, args, self.queue))
            return True
        except redis.RedisError as error:  # connection refused, timeout, read-only replica, OOM…
            log.warning("enqueue failed; the sweeper will pick the events up", extra={"error": type(error).__name__})
            return False


def publisher_for(settings: Settings) -> CeleryPublisher:
    """The publisher every caller uses (receiver, sweeper, replay): the configured broker and event queue."""
    return CeleryPublisher(settings.celery_broker_url, settings.celery_queue)
