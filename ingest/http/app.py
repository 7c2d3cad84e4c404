"""Flask application factory for the webhook port (the operations port has its own app)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Engine

from ingest.broker.publisher import publisher_for
from ingest.config.database import engine_from
from ingest.config.settings import Settings, get_settings, parse_networks
from ingest.http import request_log
from ingest.http.body import BodyBudget, BodyReader
from ingest.http.errors import install_error_handlers
from ingest.http.health import health
from ingest.http.webhooks import webhooks
from ingest.receiver.inbox_writer import BatchPublisher, InboxWriter
from ingest.receiver.receiving import Receiver
from ingest.receiver.verification import AsaasVerifier, ClerkVerifier, IpAllowList


def create_app(
    settings: Settings | None = None, *, publisher: BatchPublisher | None = None, engine: Engine | None = None
) -> Flask:
    """Build the webhook app. Settings default to the environment; tests pass their own."""
    settings = settings or get_settings()
    app = Flask("pedro_ingest", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    writer = InboxWriter(engine or engine_from(settings), publisher or publisher_for(settings))
    app.extensions["pedro_receiver"] = Receiver(
        writer=writer,
        clerk=ClerkVerifier(settings.clerk_secrets),
        asaas=AsaasVerifier(settings.asaas_tokens),
        asaas_ips=IpAllowList(
            parse_networks(settings.asaas_allowed_ips), parse_networks(settings.asaas_trusted_proxies)
        ),
    )
    app.extensions["pedro_body"] = BodyReader(
        settings.max_body_bytes, settings.body_timeout, BodyBudget(settings.max_body_bytes_in_flight)
    )
    app.register_blueprint(webhooks)
    app.register_blueprint(health)
    request_log.install(app)
    install_error_handlers(app)
    return app
