"""The one Redis client factory for Celery's broker URL, and direct, time-bounded questions to it.

Kombu's own connections retry for a long time; the receiver's publish, `/readyz` and `/metrics` need an
answer in seconds.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Kombu's Redis transport keeps one list per priority step: `queue`, `queue\x06\x163`, …
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def redis_client(broker_url: str, timeout: float) -> redis.Redis:
    """A client for a Celery broker URL that gives up after `timeout` and retries once on a fresh socket
    (a pooled connection is stale after a Redis restart; more retries would hold a caller longer).

    `redis+socket://` is kombu's spelling of `unix://`.
    """
    if broker_url.startswith("redis+socket://"):
        broker_url = "unix://" + broker_url[len("redis+socket://") :]
    return redis.Redis.from_url(
        broker_url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 1)
    )


@lru_cache(maxsize=8)
def shared_client(broker_url: str, timeout: float) -> redis.Redis:
    """One client (and its connection pool) per URL for the process's repeated questions: a new connection
    per `/readyz` or scrape cost a TCP handshake each, and under a scrape flood, a connection each.
    redis-py's pool notices a fork and starts afresh in the child."""
    return redis_client(broker_url, timeout)


def ping(broker_url: str, timeout: float) -> None:
    """Raises when the broker does not answer within `timeout` seconds."""
    shared_client(broker_url, timeout).ping()


def queue_depth(broker_url: str, queue: str, timeout: float) -> int:
    """Messages waiting on the queue (all priority steps), in one round trip."""
    pipeline = shared_client(broker_url, timeout).pipeline(transaction=False)
    for suffix in PRIORITY_SUFFIXES:
        pipeline.llen(queue + suffix)
    return sum(int(depth) for depth in pipeline.execute())
