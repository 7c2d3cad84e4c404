"""One WSGI entry for both ports: each request goes to the app of the port its connection came in on.

gunicorn can listen on several addresses (`--bind` twice) but serves one WSGI application; it sets
`SERVER_PORT` to the port of the listening socket that accepted the connection (not the `Host` header),
so the port is a fact about the connection that a client cannot choose by what it sends. A request on
any port other than OPS_PORT is a webhook-port request: the operations app is never the fallback.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from ingest.config.database import engine_from
from ingest.config.settings import Settings, get_settings
from ingest.http.app import create_app
from ingest.http.body import BodyBudget, BodyReader
from ingest.http.operations_app import OPS_MAX_BODY_BYTES, create_operations_app
from ingest.http.request_log import STARTED
from ingest.receiver.errors import WebhookRejected

OPS_CONCURRENCY = 2  # operations requests a process serves at once (its /healthz does not count)
OPS_BODY_BYTES_IN_FLIGHT = 256 * OPS_MAX_BODY_BYTES


class ByPort:
    """Webhooks first: operations requests pass a small gate, so that a flood of them, however cheap each
    is, has at most OPS_CONCURRENCY requests ready to run beside the webhooks in a process's event loop;
    the rest wait without taking a turn.

    An operations request's body is read whole before the gate (at most OPS_MAX_BODY_BYTES, else 413;
    within BODY_TIMEOUT, else 408): a client that declares a body and sends it slowly, or never, holds
    only its own connection, never a slot that `/readyz` and `/metrics` need."""

    def __init__(self, webhooks: Flask, operations: Flask, ops_port: int, body_timeout: float = 10.0) -> None:
        self.webhooks = webhooks
        self.operations = operations
        self.ops_port = str(ops_port)
        self._gate = threading.BoundedSemaphore(OPS_CONCURRENCY)
        self._bodies = BodyReader(OPS_MAX_BODY_BYTES, body_timeout, BodyBudget(OPS_BODY_BYTES_IN_FLIGHT))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("SERVER_PORT") != self.ops_port:
            environ[STARTED] = time.perf_counter()
            return self.webhooks(environ, start_response)
        if environ.get("PATH_INFO") == "/healthz":
            return self.operations(environ, start_response)
        if environ.get("CONTENT_LENGTH") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            try:
                body = self._bodies.read(environ)
            except WebhookRejected as refused:
                return _refusal(refused, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        with self._gate:  # the whole answer is produced inside the gate
            answer = self.operations(environ, start_response)
            try:
                return list(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()


def _refusal(refused: WebhookRejected, start_response: Callable[..., Any]) -> list[bytes]:
    """The JSON error both apps give, without entering the operations app (no slot, no Flask). The body
    reader has already shut the connection for reading: the answer goes out, then it closes."""
    body = json.dumps({"error": refused.code, "detail": refused.detail}, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if refused.retry_after is not None:
        headers.append(("Retry-After", str(refused.retry_after)))
    start_response(f"{refused.status} {_REASONS.get(refused.status, 'Error')}", headers)
    return [body]


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 503: "Service Unavailable"}


def create_server_app(settings: Settings | None = None) -> ByPort:
    """Both apps over one engine (one connection pool per process)."""
    settings = settings or get_settings()
    engine = engine_from(settings)
    return ByPort(
        create_app(settings, engine=engine),
        create_operations_app(settings, engine=engine),
        settings.ops_port,
        settings.body_timeout,
    )
