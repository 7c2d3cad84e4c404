"""The receiver keeps answering 200 across a PostgreSQL restart: a write that fails on a stale pooled
connection is retried once on a fresh one instead of answering 503 (a private server is restarted; the
shared one on 5432 never is)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from ingest.config.settings import load_settings
from ingest.http.app import create_app
from models.db import engine_for
from tests.support.clerk import CLERK_SECRET, clerk_user_event, signed_clerk
from tests.support.inbox import RecordingPublisher
from tests.support.private_services import PrivatePostgres


@pytest.fixture
def private_database() -> Iterator[tuple[PrivatePostgres, str]]:
    from migrations.runner import migrate

    postgres = PrivatePostgres().start()
    try:
        url = postgres.create_database("pedro_restart")
        migrate(url)
        yield postgres, url
    finally:
        postgres.close()


def test_first_writes_after_a_postgres_restart_are_accepted_not_503(private_database) -> None:
    postgres, url = private_database
    settings = load_settings(database_url=url, clerk_webhook_secret=CLERK_SECRET, db_pool_size=2)
    publisher = RecordingPublisher()
    client = create_app(settings, publisher=publisher).test_client()
    engine = engine_for(url, settings.db_pool_size, settings.db_connect_timeout)
    try:
        body, headers = signed_clerk(clerk_user_event("user.created"))
        assert client.post("/webhooks/clerk", data=body, headers=headers).status_code == 200  # pool is warm

        postgres.restart()  # every pooled connection is now stale

        answers = []
        for _ in range(3):
            body, headers = signed_clerk(clerk_user_event("user.created"))
            response = client.post("/webhooks/clerk", data=body, headers=headers)
            answers.append((response.status_code, response.json.get("error")))
        assert answers == [(200, None)] * 3
        with engine.connect() as connection:
            stored = connection.execute(text('SELECT count(*) FROM "WebhookEvent"')).scalar_one()
        assert stored == 4 and len(publisher.published) == 4  # each stored and enqueued once
    finally:
        engine.dispose()
