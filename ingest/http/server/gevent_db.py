"""Cooperative database waits when the process runs under gevent (the receiver's gunicorn workers).

gunicorn's gevent worker patches sockets, threads and queues before it imports the app, but psycopg2
talks to PostgreSQL through libpq in C, which gevent cannot patch: without a wait callback every query
would block the whole process, every request with it. psycogreen's callback makes the waits yield.

One thing is lost on the way: libpq enforces `connect_timeout` only when it connects in blocking mode,
so under psycogreen a PostgreSQL that accepts the TCP connection but never answers (hung, or half
partitioned) would hold a connect forever (psycopg/psycogreen#2). The callback here puts the
connection's own `connect_timeout` back as a deadline on the connect phase only; queries keep no
deadline of their own, as before. Outside gevent (Celery workers, the CLI, in-process test apps) nothing
changes.
"""

from __future__ import annotations

from typing import Any

DEFAULT_CONNECT_DEADLINE = 10.0  # seconds, for a connection that sets no connect_timeout


def gevent_active() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket"))


def cooperative_database_waits() -> bool:
    """Make psycopg2 yield to other greenlets while it waits; True when gevent is active."""
    if not gevent_active():
        return False
    import gevent
    import psycopg2
    from psycogreen.gevent import gevent_wait_callback
    from psycopg2 import extensions

    def wait(connection: Any) -> None:
        if connection.status != extensions.STATUS_SETUP:  # connected: a query, waits as long as it takes
            gevent_wait_callback(connection)
            return
        deadline = _connect_timeout(connection)
        timed_out = psycopg2.OperationalError(f"timeout expired: no answer from PostgreSQL within {deadline:g}s")
        with gevent.Timeout(deadline, timed_out):
            gevent_wait_callback(connection)

    extensions.set_wait_callback(wait)
    return True


def _connect_timeout(connection: Any) -> float:
    try:
        value = float(connection.get_dsn_parameters().get("connect_timeout") or 0)
    except (ValueError, TypeError):
        value = 0.0
    # libpq treats 1 as 2 and 0 (or unset) as "wait forever"; forever is never what the receiver wants.
    return max(value, 2.0) if value > 0 else DEFAULT_CONNECT_DEADLINE
