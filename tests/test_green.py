"""The receiver's worker processes: gevent with cooperative psycopg2 waits, and a frozen startup heap.

gevent cannot patch libpq; `ingest.http.server.gevent_db` installs a wait callback when gevent is active. Without it a
query blocks the hub, and with it every request the process holds (health checks included). Likewise a
full garbage collection over the app's startup objects stops every request: `ingest.http.server.wsgi` freezes them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import requests

from tests.support.clerk import clerk_user_event, signed_clerk
from tests.support.processes import serving, wait_for
from tests.support.servers import run_sql

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_under_gevent_a_query_lets_other_greenlets_run(database: str) -> None:
    # While one greenlet sits in pg_sleep, another keeps ticking: the hub was not blocked by libpq.
    out = run_python(f"""
        from gevent import monkey; monkey.patch_all()
        import gevent, psycopg2, psycopg2.extensions
        from ingest.http.server.gevent_db import cooperative_database_waits
        print(cooperative_database_waits(), psycopg2.extensions.get_wait_callback() is not None)
        ticks = []
        def ticker():
            while True:
                ticks.append(1)
                gevent.sleep(0.01)
        background = gevent.spawn(ticker)
        connection = psycopg2.connect({database!r})
        connection.cursor().execute("SELECT pg_sleep(0.5)")
        background.kill()
        print(len(ticks))
    """)
    patched, ticks = out.splitlines()
    assert patched == "True True"
    assert int(ticks) >= 10, f"only {ticks} ticks while the query ran: psycopg2 blocked the gevent hub"


def test_without_gevent_nothing_is_patched() -> None:
    out = run_python("""
        import psycopg2.extensions
        from ingest.http.server.gevent_db import cooperative_database_waits
        print(cooperative_database_waits(), psycopg2.extensions.get_wait_callback())
    """)
    assert out == "False None"


@pytest.fixture
def one_worker_receiver(service_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`pedro-ingest serve -w 1`: one process, so every request below reaches the same gevent hub."""
    with serving(service_env, tmp_path / "serve.log", workers=1) as (_, url):
        yield url


def test_receiver_answers_health_checks_while_its_inbox_insert_waits_on_a_lock(
    one_worker_receiver: str, database: str
) -> None:
    blocker = psycopg2.connect(database)
    blocker.cursor().execute('LOCK TABLE "WebhookEvent" IN ACCESS EXCLUSIVE MODE')  # held until rollback
    delivered: dict[str, requests.Response] = {}
    body, headers = signed_clerk(clerk_user_event())
    post = threading.Thread(
        target=lambda: delivered.setdefault(
            "response", requests.post(f"{one_worker_receiver}/webhooks/clerk", data=body, headers=headers, timeout=30)
        )
    )
    try:
        post.start()
        wait_for(lambda: lock_waiters(database) > 0, 10, what="the receiver's insert to wait on the lock")
        health = requests.get(f"{one_worker_receiver}/healthz", timeout=5)
        assert health.status_code == 200
        assert "response" not in delivered  # the webhook is still waiting: it was not answered before durable
    finally:
        blocker.rollback()
        blocker.close()
    post.join(30)
    assert delivered["response"].status_code == 200
    assert delivered["response"].json()["status"] == "accepted"


def lock_waiters(database: str) -> int:
    [(waiting,)] = run_sql(
        database,
        """SELECT count(*) FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%WebhookEvent%'""",
    )
    return waiting


def test_under_gevent_connect_timeout_still_bounds_a_server_that_never_answers() -> None:
    # A listener whose backlog completes the TCP handshake but never speaks: libpq waits for the server's
    # first message. In blocking mode libpq gives up after connect_timeout; under a plain psycogreen
    # callback it would wait forever (psycopg/psycogreen#2).
    out = run_python("""
        from gevent import monkey; monkey.patch_all()
        import socket, psycopg2
        from ingest.http.server.gevent_db import cooperative_database_waits
        cooperative_database_waits()
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        try:
            psycopg2.connect(host="127.0.0.1", port=port, dbname="x", user="x", connect_timeout=2)
            print("connected")
        except psycopg2.OperationalError as error:
            print("OperationalError", "timeout" in str(error))
    """)
    assert out == "OperationalError True"


def test_the_wsgi_module_freezes_what_loading_the_app_allocated(service_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import gc, ingest.http.server.wsgi; print(gc.get_freeze_count())"],
        cwd=ROOT, env=service_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) > 10_000  # the app's modules, routes and settings: out of every full collection
