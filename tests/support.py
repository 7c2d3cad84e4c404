"""Helpers shared by the tests: throw-away databases, signed Clerk requests, subprocesses, polling."""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from svix.webhooks import Webhook

FIXTURES = Path(__file__).parent / "fixtures"
ADMIN_URL = os.environ.get("PEDRO_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PEDRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLERK_SECRET = "whsec_" + base64.b64encode(b"pedro-ingest-test-signing-key-01").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-tenant-signing-key-02").decode()


# ---- databases -------------------------------------------------------------------------------------


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def create_database(prefix: str = "pedro_test") -> tuple[str, str]:
    """A new empty database; returns (name, url)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
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


# ---- Clerk payloads and signatures -------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def clerk_user_event(
    event_type: str = "user.created",
    *,
    clerk_id: str | None = None,
    email: str | None = "ada@example.org",
    first_name: str | None = "Ada",
    last_name: str | None = "Lovelace",
    updated_at: int | None = None,
) -> dict[str, Any]:
    """A Clerk `user.*` event built from the documented sample, with the fields the tests vary."""
    event = copy.deepcopy(json.loads((FIXTURES / "clerk_user_created.json").read_text()))
    clerk_id = clerk_id or f"user_{secrets.token_hex(8)}"
    stamp = updated_at or now_ms()
    event["type"] = event_type
    event["timestamp"] = stamp
    if event_type == "user.deleted":
        event["data"] = {"deleted": True, "id": clerk_id, "object": "user"}
        return event
    data = event["data"]
    data["id"] = clerk_id
    data["first_name"] = first_name
    data["last_name"] = last_name
    data["updated_at"] = stamp
    data["created_at"] = stamp
    if email is None:
        data["email_addresses"] = []
        data["primary_email_address_id"] = None
    else:
        data["email_addresses"][0]["email_address"] = email
    return event


def svix_headers(
    body: str, *, secret: str = CLERK_SECRET, msg_id: str | None = None, timestamp: dt.datetime | None = None
) -> dict[str, str]:
    """Headers exactly as Svix sends them, signed with the svix library's own signer."""
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    timestamp = timestamp or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(timestamp.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }


def signed_clerk(event: dict[str, Any], **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event)
    return body.encode(), svix_headers(body, **kwargs)


# ---- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A subprocess with its output in a file, stopped (and killed if need be) by `stop`."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, needle: str, timeout: float = 60.0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited with {self.popen.returncode}:\n{self.output()[-3000:]}")
            return needle in self.output()

        wait_for(seen, timeout, what=f"{needle!r} in {self.log_path.name}")

    def stop(self, sig: int = 15, timeout: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, 9)
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode


def cli_argv(*args: str) -> list[str]:
    """`pedro-ingest ARGS` through the installed package's entry point."""
    return [sys.executable, "-m", "ingest.cli", *args]


def wait_for_receiver(process: Process, url: str, timeout: float = 30.0) -> None:
    """Until `serve` answers /healthz; fails at once, with its output, if it exited."""
    import requests

    def up() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(process.output())
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:  # refused, or a read timeout while gunicorn's workers boot
            return False

    wait_for(up, timeout, what="receiver to answer /healthz")


@contextlib.contextmanager
def serving(env: dict[str, str], log_path: Path, workers: int = 2) -> Iterator[tuple[Process, str]]:
    """A real `pedro-ingest serve` (gunicorn) on a free loopback port, stopped on the way out."""
    port = free_port()
    process = Process(cli_argv("serve", "--port", str(port), "--workers", str(workers)), env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_receiver(process, url)
        yield process, url
    finally:  # also when it never came up: no orphaned gunicorn
        process.stop()
