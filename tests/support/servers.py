"""The shared test servers (PostgreSQL, Redis): throw-away databases, this process's Redis database and key
namespace, and plain SQL helpers.

Each pytest process (an xdist worker, or the one process of a serial run) gets its own Redis database number
and a random namespace that every queue and key of its tests contains, so parallel workers and parallel
sessions never see each other's tasks, and the session can delete exactly what it created.
"""

from __future__ import annotations

import os
import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from sqlalchemy import Engine, text

ADMIN_URL = os.environ.get("PEDRO_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


REDIS_BASE_URL = os.environ.get("PEDRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
REDIS_DATABASES = 16  # Redis's default `databases`; worker numbers wrap below it


def worker_number(worker: str | None = None) -> int:
    """0 for a serial run and xdist's `gw0`, 1 for `gw1`, ..."""
    worker = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def worker_redis_url(base: str = REDIS_BASE_URL, worker: str | None = None) -> str:
    """`base`'s database number plus this xdist worker's number (wrapping within Redis's 16 databases)."""
    parts = urlsplit(base)
    first = int(parts.path.strip("/") or 0)
    number = first + worker_number(worker) % max(1, REDIS_DATABASES - first)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))


REDIS_URL = worker_redis_url()
NAMESPACE = f"pedro-test-{secrets.token_hex(4)}"  # in every queue name and Redis key prefix of this process


def own_queue(purpose: str) -> str:
    """A queue name of this test process (the session cleanup removes its Redis keys)."""
    return f"{NAMESPACE}-{purpose}-{secrets.token_hex(3)}"


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def create_database(prefix: str = "pedro_test") -> tuple[str, str]:
    """A new empty database; returns (name, url)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{prefix}_{worker}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return name, database_url(name)


def drop_database(name: str) -> None:
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def run_sql(url: str, sql: str, params: Any = None) -> list[tuple]:
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params).all()]


SHARED_KEYS = ("_kombu.*", "unacked*", "pedro:*")  # kombu's per-database keys, the jobs' and console's state


def clean_redis(url: str = REDIS_URL, namespace: str = NAMESPACE) -> int:
    """Delete this session's keys; the database's shared ones too when no other test session still uses it.

    Returns how many keys are left in the database (another session's, or keys the tests did not make).
    """
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"*{namespace}*", count=1000):
            client.delete(key)
        if not any(client.scan_iter(match="*pedro-test-*", count=1000)):
            for pattern in SHARED_KEYS:
                for key in client.scan_iter(match=pattern, count=1000):
                    client.delete(key)
        return int(client.dbsize())
    finally:
        client.close()
