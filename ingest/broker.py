"""Direct, time-bounded questions to the Redis broker: does it answer, how long is the queue.

Kombu's own connections retry for a long time; `/readyz` and `/metrics` need an answer in seconds.
"""

from __future__ import annotations

import redis

# Kombu's Redis transport keeps one list per priority step: `queue`, `queue\x06\x163`, …
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def redis_client(broker_url: str, timeout: float) -> redis.Redis:
    """A redis-py client for a Celery broker URL (`redis+socket://` is kombu's spelling of `unix://`)."""
    url = broker_url.replace("redis+socket://", "unix://", 1)
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False)


def ping(broker_url: str, timeout: float) -> None:
    """Raises when the broker does not answer within `timeout` seconds."""
    client = redis_client(broker_url, timeout)
    try:
        client.ping()
    finally:
        client.close()


def queue_depth(broker_url: str, queue: str, timeout: float) -> int:
    """Messages waiting on the queue (all priority steps)."""
    client = redis_client(broker_url, timeout)
    try:
        return sum(int(client.llen(queue + suffix)) for suffix in PRIORITY_SUFFIXES)
    finally:
        client.close()
