"""Flask application factory for the receiver."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from ingest.broker.publisher import publisher_for
from ingest.config.database import engine_from
from ingest.config.settings import Settings, get_settings, parse_networks
from ingest.http import request_log
from ingest.http.backlog import backlog_collector
from ingest.http.operations import operations
from ingest.http.responses import json_response
from ingest.http.webhooks import webhooks
from ingest.observability.error_origin import error_origin
from ingest.observability.metrics import ScrapeTimeCollector
from ingest.receiver.errors import WebhookRejected
from ingest.receiver.inbox_writer import BatchPublisher, InboxWriter
from ingest.receiver.receiving import Receiver
from ingest.receiver.verification import AsaasVerifier, ClerkVerifier, IpAllowList

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operations:
    """What the operations endpoints need: the engine, the settings and the backlog gauges."""

    engine: Engine
    settings: Settings
    backlog: ScrapeTimeCollector


def error_response(status: int, code: str, detail: str, retry_after: int | None = None):
    response = json_response(status, code, {"error": code, "detail": detail})
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def create_app(settings: Settings | None = None, *, publisher: BatchPublisher | None = None) -> Flask:
    """Build the receiver. Settings default to the environment; tests pass their own."""
    settings = settings or get_settings()
    app = Flask("pedro_ingest", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    engine = engine_from(settings)
    writer = InboxWriter(engine, publisher or publisher_for(settings))
    app.extensions["pedro_receiver"] = Receiver(
        writer=writer,
        clerk=ClerkVerifier(settings.clerk_secrets),
        asaas=AsaasVerifier(settings.asaas_tokens),
        asaas_ips=IpAllowList(
            parse_networks(settings.asaas_allowed_ips), parse_networks(settings.asaas_trusted_proxies)
        ),
    )

    app.extensions["pedro_ops"] = Operations(engine, settings, backlog_collector(engine, settings))
    app.register_blueprint(webhooks)
    app.register_blueprint(operations)
    request_log.install(app)

    @app.errorhandler(WebhookRejected)
    def rejected(error: WebhookRejected):
        return error_response(error.status, error.code, error.detail, error.retry_after)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(error.code or 500, "http_error")
        return error_response(error.code or 500, code, error.description or code)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        origin = error_origin(error)  # type and place only: a message could quote the body
        log.error("unexpected error in receiver", extra={"error_type": origin.error_type, "error_at": origin.location})
        return error_response(500, "internal_error", "unexpected error; the event was not acknowledged")

    return app
