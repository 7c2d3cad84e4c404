"""The operator console: what happened to every event and every user, with replay, on the operations port.

Off (404) unless CONSOLE_PASSWORD is set. Server-rendered (Flask + Jinja, plain CSS, a few lines of script
for local times that run only with the page's CSP nonce), so there is nothing to build.
"""

from __future__ import annotations

import datetime as dt
import functools

from flask import Flask
from sqlalchemy import Engine

from ingest.broker.publisher import Publisher, publisher_for
from ingest.broker.redis_client import redis_client
from ingest.config.settings import Settings
from ingest.http.console.auth import ConsoleAuth
from ingest.http.console.context import Console
from ingest.http.console.limiter import FailedLogins
from ingest.http.console.sessions import RedisSessionInterface, SessionKeys
from ingest.http.console.views import console


def install_console(app: Flask, settings: Settings, engine: Engine, publisher: Publisher | None = None) -> bool:
    """Register the console on the operations app when a password is configured; True when it was."""
    if settings.console_password is None:
        return False
    password = settings.console_password.get_secret_value()
    configured_key = settings.console_secret_key.get_secret_value() if settings.console_secret_key else None
    shared_redis = functools.cache(lambda: redis_client(settings.celery_broker_url, settings.ready_timeout))
    keys = SessionKeys(shared_redis, password, configured_key, settings.celery_queue)
    app.session_interface = RedisSessionInterface(shared_redis, keys)
    app.config.update(
        SESSION_COOKIE_NAME="pedro_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.console_session_minutes),
    )
    failed_logins = FailedLogins(shared_redis, settings.console_login_attempts, settings.celery_queue)
    auth = ConsoleAuth(password, failed_logins, settings.console_session_minutes)
    app.extensions["pedro_console"] = Console(engine, publisher or publisher_for(settings), settings, auth)
    app.register_blueprint(console)
    return True
