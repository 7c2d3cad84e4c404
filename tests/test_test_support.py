"""The suite's own promises: each xdist worker gets its own Redis database, and a session deletes what it made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.private_services import PrivateRedis
from tests.support.servers import clean_redis, worker_redis_url


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.close()


def test_each_xdist_worker_gets_its_own_redis_database_from_11_up() -> None:
    assert worker_redis_url("redis://127.0.0.1:6379/11", "gw0").endswith("/11")
    assert worker_redis_url("redis://127.0.0.1:6379/11", "gw3").endswith("/14")
    assert worker_redis_url("redis://127.0.0.1:6379/11", "gw5").endswith("/11")  # wraps within 11-15
    assert worker_redis_url("redis://:secret@h:7000/2", "").endswith(":secret@h:7000/2")  # a serial run: the first


def test_a_session_deletes_its_keys_and_the_shared_ones_only_when_nobody_else_uses_the_database(
    private_redis: PrivateRedis,
) -> None:
    client = redis.Redis.from_url(private_redis.url)
    ours, theirs = "pedro-test-0000aaaa", "pedro-test-1111bbbb"
    for key in (ours, f"{ours}-periodic", f"_kombu.binding.{ours}", f"{ours}:reconcile:last", theirs):
        client.rpush(key, "x")
    client.sadd("_kombu.binding.celery.pidbox", "worker@host")
    client.set("pedro:asaas:api:paused_until", "0")

    assert clean_redis(private_redis.url, ours) == 3  # another session is live: it keeps its queue and the shared keys
    assert sorted(key.decode() for key in client.scan_iter()) == [
        "_kombu.binding.celery.pidbox", "pedro-test-1111bbbb", "pedro:asaas:api:paused_until",
    ]  # fmt: skip
    assert clean_redis(private_redis.url, theirs) == 0  # the last session out leaves the database empty
    client.close()
