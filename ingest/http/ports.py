"""One WSGI entry for both ports: each request goes to the app of the port its connection came in on.

gunicorn can listen on several addresses (`--bind` twice) but serves one WSGI application; it sets
`SERVER_PORT` to the port of the listening socket that accepted the connection (not the `Host` header),
so the port is a fact about the connection that a client cannot choose by what it sends. A request on
any port other than OPS_PORT is a webhook-port request: the operations app is never the fallback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from ingest.config.database import engine_from
from ingest.config.settings import Settings, get_settings
from ingest.http.app import create_app
from ingest.http.operations_app import create_operations_app
from ingest.http.request_log import STARTED

OPS_CONCURRENCY = 2  # operations requests a process serves at once (its /healthz does not count)


class ByPort:
    """Webhooks first: operations requests pass a small gate, so that a flood of them, however cheap each
    is, has at most OPS_CONCURRENCY requests ready to run beside the webhooks in a process's event loop;
    the rest wait without taking a turn."""

    def __init__(self, webhooks: Flask, operations: Flask, ops_port: int) -> None:
        self.webhooks = webhooks
        self.operations = operations
        self.ops_port = str(ops_port)
        self._gate = threading.BoundedSemaphore(OPS_CONCURRENCY)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("SERVER_PORT") != self.ops_port:
            environ[STARTED] = time.perf_counter()
            return self.webhooks(environ, start_response)
        if environ.get("PATH_INFO") == "/healthz":
            return self.operations(environ, start_response)
        with self._gate:  # the whole answer is produced inside the gate
            answer = self.operations(environ, start_response)
            try:
                return list(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()


def create_server_app(settings: Settings | None = None) -> ByPort:
    """Both apps over one engine (one connection pool per process)."""
    settings = settings or get_settings()
    engine = engine_from(settings)
    return ByPort(
        create_app(settings, engine=engine),
        create_operations_app(settings, engine=engine),
        settings.ops_port,
    )
