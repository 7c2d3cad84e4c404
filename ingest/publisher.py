"""Hands stored events to the workers through the Redis broker, failing fast when it is down.

A failed publish is not an error for the sender: the row is durable and the sweeper enqueues it later.
"""

from __future__ import annotations

import logging
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ingest.task_messages import task_message

PROCESS_EVENT_TASK = "pedro_ingest.process_event"
PROCESS_EVENTS_TASK = "pedro_ingest.process_events"
log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Anything that can hand one inbox row id to the workers (the sweeper and replay use it)."""

    def publish(self, row_id: str) -> bool: ...


def redis_client(broker_url: str, timeout: float) -> redis.Redis:
    """A client for Celery's broker URL that gives up after `timeout` and retries once on a fresh socket
    (a pooled connection is stale after a Redis restart; more retries would hold a request longer)."""
    if broker_url.startswith("redis+socket://"):  # kombu's spelling of a Unix socket
        broker_url = "unix://" + broker_url[len("redis+socket://") :]
    return redis.Redis.from_url(
        broker_url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 1)
    )


class CeleryPublisher:
    """Sends `process_event(row_id)` / `process_events(row_ids)` by name with one LPUSH per message,
    so the receiver never imports worker code (see `ingest.task_messages` for why not `send_task`)."""

    def __init__(self, broker_url: str, queue: str, *, timeout: float = 2.0) -> None:
        self.queue = queue
        self._redis = redis_client(broker_url, timeout)

    def publish(self, row_id: str) -> bool:
        """True when the broker accepted the task; False (logged) when it could not be reached."""
        return self._send(PROCESS_EVENT_TASK, [row_id])

    def publish_many(self, row_ids: list[str]) -> bool:
        """One task for a batch of ids (the receiver's group commit): the broker cost is paid once."""
        if len(row_ids) == 1:
            return self.publish(row_ids[0])
        return self._send(PROCESS_EVENTS_TASK, [row_ids])

    def _send(self, task_name: str, args: list) -> bool:
        try:
            self._redis.lpush(self.queue, task_message(task_name, args, self.queue))
            return True
        except redis.RedisError as error:  # connection refused, timeout, read-only replica, OOM…
            log.warning("enqueue failed; the sweeper will pick the events up", extra={"error": type(error).__name__})
            return False
