"""Cooperative database waits when the process runs under gevent (the receiver's gunicorn workers).

gunicorn's gevent worker patches sockets, threads and queues before it imports the app, but psycopg2
talks to PostgreSQL through libpq in C, which gevent cannot patch: without a wait callback every query
would block the whole process, every request with it. psycogreen installs that callback. Outside
gevent (the Celery workers, the CLI, the tests' in-process apps) nothing changes.
"""

from __future__ import annotations


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
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    return True
