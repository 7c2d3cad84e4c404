"""The operations app: `/metrics`, `/readyz`, `/openapi.json` and `/healthz`, on the operations port.

A separate Flask app, so nothing an operator needs is reachable on the public webhook port, and so that
what operators get later (a console, say) is one more blueprint: `create_operations_app(...)
.register_blueprint(console)`. `serve` runs it in the same gunicorn workers as the webhooks, on its own
listener (see `ingest.http.ports`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine

from ingest.config.database import engine_from
from ingest.config.settings import Settings, get_settings
from ingest.http import readiness
from ingest.http.backlog import backlog_collector
from ingest.http.cached import Cached
from ingest.http.console import install_console
from ingest.http.errors import install_error_handlers
from ingest.http.health import health
from ingest.http.operations import operations
from ingest.observability import metrics

OPS_MAX_BODY_BYTES = 4096  # the console's forms are a few hundred bytes; nothing else on the port has a body


@dataclass(frozen=True)
class Operations:
    """What the operations endpoints answer from, each read at most once per OPS_CACHE_SECONDS."""

    readiness: Cached[dict[str, str | None]]
    metrics: Cached[tuple[bytes, str]]
    settings: Settings


def create_operations_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    settings = settings or get_settings()
    engine = engine or engine_from(settings)
    backlog = backlog_collector(engine, settings)
    app = Flask("pedro_ingest_operations", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = OPS_MAX_BODY_BYTES  # also where no server reads the body first (tests)
    app.extensions["pedro_ops"] = Operations(
        readiness=Cached(
            settings.ops_cache_seconds,
            lambda: readiness.check(engine, settings.celery_broker_url, settings.ready_timeout),
        ),
        metrics=Cached(settings.ops_cache_seconds, lambda: metrics.render(backlog)),
        settings=settings,
    )
    app.register_blueprint(health)
    app.register_blueprint(operations)
    install_error_handlers(app)
    install_console(app, settings, engine)
    return app
