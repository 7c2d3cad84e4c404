"""Cluster-wide "only one at a time": PostgreSQL advisory locks for periodic jobs and for migrations.

Jobs: a second beat, a manual CLI run during a scheduled one, or a redelivered task finds the lock held and
skips instead of queueing up. The lock lives on its own autocommit connection, so it never holds a
transaction open, and PostgreSQL releases it by itself if the process dies.

Migrations: a second deploy's `migrate` (or downgrade) waits for the first one's lock instead of racing it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

# The two-key form lives in a key space apart from the migrations' single bigint lock.
LOCK_NAMESPACE = 0x70656472  # "pedr"
MIGRATION_LOCK_ID = 0x70656472  # "pedr": one single-key lock for every pedro-ingest migration


def lock_key(name: str) -> int:
    """A stable int4 per job name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@contextmanager
def try_job_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Yields True while this process holds the job's lock, False (at once) when another holder has it."""
    params = {"ns": LOCK_NAMESPACE, "key": lock_key(name)}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar_one())
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the migration lock on `connection` (waiting for another holder) while the block runs.

    The lock is taken and released in transactions of their own: after a failed revision the connection's
    transaction is aborted, so it is rolled back before the unlock."""
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
