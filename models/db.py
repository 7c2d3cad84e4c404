"""Engines and sessions: one connection pool per process and URL (the URL comes from the caller)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine
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
