"""Engines and sessions: one connection pool per process and URL (the URL comes from the caller)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, Result, TextClause, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

# Query parameters that Prisma understands and libpq rejects ("invalid connection option").
PRISMA_ONLY_PARAMS = {
    "schema",
    "connection_limit",
    "pool_timeout",
    "pgbouncer",
    "socket_timeout",
    "statement_cache_size",
}


def sqlalchemy_url(database_url: str) -> str:
    """Turn a Prisma/libpq URL into a psycopg2 SQLAlchemy URL (Prisma's `?schema=` becomes search_path)."""
    parts = urlsplit(database_url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in params if key == "schema"), None)
    kept = [(key, value) for key, value in params if key not in PRISMA_ONLY_PARAMS]
    if schema and schema != "public":
        kept.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(("postgresql+psycopg2", parts.netloc, parts.path, urlencode(kept), parts.fragment))


def make_engine(database_url: str, *, pool_size: int = 5, connect_timeout: int = 3, **kwargs: object) -> Engine:
    """An engine whose connections fail fast when PostgreSQL is down (the receiver must answer 503 quickly)."""
    return create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # SQL errors must never carry payloads or personal data into logs
        connect_args={"connect_timeout": connect_timeout, "application_name": "pedro-ingest"},
        **kwargs,
    )


_engines: dict[tuple[str, int, int], Engine] = {}


def engine_for(database_url: str, pool_size: int = 5, connect_timeout: int = 3) -> Engine:
    """The process's engine for a URL: one pool per process, shared by every caller."""
    key = (database_url, pool_size, connect_timeout)
    if key not in _engines:
        _engines[key] = make_engine(database_url, pool_size=pool_size, connect_timeout=connect_timeout)
    return _engines[key]


def forget_inherited_connections() -> None:
    """In a forked child: drop the parent's pooled connections without closing the parent's sockets."""
    for engine in _engines.values():
        engine.dispose(close=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on any exception."""
    with _session_factory(engine).begin() as session:
        yield session


_factories: dict[Engine, sessionmaker[Session]] = {}


def _session_factory(engine: Engine) -> sessionmaker[Session]:
    if engine not in _factories:
        _factories[engine] = sessionmaker(bind=engine, expire_on_commit=False)
    return _factories[engine]


class Trips:
    """A transaction whose BEGIN travels with its first statement and whose COMMIT travels with its last.

    psycopg2 sends BEGIN as a round trip of its own before a transaction's first statement, and COMMIT
    is another; on a busy database host every round trip costs a scheduling delay, and an event applied by
    a worker is mostly round trips. On an autocommit connection, `open` sends `BEGIN; <statements>` and
    `finish` sends `<statement>; COMMIT` as one simple-query message each: PostgreSQL runs them in order
    and stops at the first error, so a failing statement never reaches the COMMIT; the caller's exception
    then rolls the transaction back (`transaction_in_trips`). Statements in between go through `session`
    as usual. A multi-statement message returns the result of its last statement only.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.committed = False

    def open(self, statements: TextClause, params: dict[str, Any]) -> Result[Any]:
        return self.session.execute(_prefixed("BEGIN; ", statements), params)

    def finish(self, statement: TextClause, params: dict[str, Any]) -> None:
        """The transaction's last write and its COMMIT, in one round trip."""
        self.session.execute(_suffixed(statement, "; COMMIT"), params)
        self.committed = True


@contextmanager
def transaction_in_trips(engine: Engine) -> Iterator[Trips]:
    """`Trips` on this thread's autocommit connection: committed by `finish` (or by a plain COMMIT if the
    block ends without it), rolled back on any exception. Nothing is ever autocommitted statement by
    statement: the first statement is `open`'s, which begins the transaction."""
    connection = _held_connection(engine)
    session = Session(bind=connection, autoflush=False)
    trips = Trips(session)
    try:
        yield trips
        if not trips.committed:
            session.execute(_COMMIT)
    except BaseException:
        if not connection.invalidated:
            try:
                connection.exec_driver_sql("ROLLBACK")
            except BaseException:  # never keep a connection that may still be inside a transaction
                connection.invalidate()
        if connection.invalidated:
            _drop_held()
        raise
    finally:
        session.close()


_held = threading.local()
_inherited: list[object] = []  # a forked child keeps its parent's held connections alive, unused and unclosed


def _held_connection(engine: Engine) -> Connection:
    """One autocommit connection per thread, kept between transactions (for one engine at a time).

    Checking a connection out of the pool and back costs two round trips here (psycopg2 switches the
    isolation level on the server when autocommit is turned on, then off again); a worker applies one
    event after another, so it keeps its connection. Dropped after a disconnect or a failed ROLLBACK, and
    when the thread asks for another engine's (tests make one engine per database).
    """
    if getattr(_held, "pid", None) != os.getpid():
        _inherited.append(getattr(_held, "connection", None))  # never closed here: the parent's socket
        _held.engine, _held.connection, _held.pid = None, None, os.getpid()
    connection: Connection | None = _held.connection
    if _held.engine is not engine or connection is None or connection.closed or connection.invalidated:
        _drop_held()
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        _held.engine, _held.connection = engine, connection
    return connection


def _drop_held() -> None:
    connection, _held.engine, _held.connection = _held.connection, None, None
    if connection is not None:
        connection.close()


_COMMIT = text("COMMIT")
_joined: dict[str, TextClause] = {}


def _prefixed(prefix: str, statement: TextClause) -> TextClause:
    return _joined_text(prefix + statement.text)


def _suffixed(statement: TextClause, suffix: str) -> TextClause:
    return _joined_text(statement.text + suffix)


def _joined_text(sql: str) -> TextClause:
    """One `TextClause` per distinct text, so that SQLAlchemy's compiled cache hits every time."""
    found = _joined.get(sql)
    if found is None:
        found = _joined[sql] = text(sql)
    return found
