"""One WSGI entry for both ports: each request goes to the app of the port its connection came in on.

gunicorn can listen on several addresses (`--bind` twice) but serves one WSGI application; it sets
`SERVER_PORT` to the port of the listening socket that accepted the connection (not the `Host` header),
so the port is a fact about the connection that a client cannot choose by what it sends. A request on
any port other than OPS_PORT is a webhook-port request: the operations app is never the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from ingest.config.database import engine_from
from ingest.config.settings import Settings, get_settings
from ingest.http.app import create_app
from ingest.http.operations_app import create_operations_app


class ByPort:
    def __init__(self, webhooks: Flask, operations: Flask, ops_port: int) -> None:
        self.webhooks = webhooks
        self.operations = operations
        self.ops_port = str(ops_port)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        app = self.operations if environ.get("SERVER_PORT") == self.ops_port else self.webhooks
        return app(environ, start_response)


def create_server_app(settings: Settings | None = None) -> ByPort:
    """Both apps over one engine (one connection pool per process)."""
    settings = settings or get_settings()
    engine = engine_from(settings)
    return ByPort(
        create_app(settings, engine=engine),
        create_operations_app(settings, engine=engine),
        settings.ops_port,
    )
