"""Receive-time outages: PostgreSQL down means 503 and nothing acknowledged; Redis down still stores."""

from __future__ import annotations

from sqlalchemy import Engine, text

from ingest.config.settings import load_settings
from ingest.http.app import create_app
from tests.support.clerk import clerk_user_event, signed_clerk
from tests.support.processes import free_port


def test_database_unreachable_answers_503_with_retry_after(engine: Engine) -> None:
    dead_port = free_port()
    settings = load_settings(database_url=f"postgresql://postgres@127.0.0.1:{dead_port}/nowhere")
    client = create_app(settings).test_client()
    body, headers = signed_clerk(clerk_user_event())
    response = client.post("/webhooks/clerk", data=body, headers=headers)
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert str(dead_port) not in response.get_data(as_text=True)  # no connection details leak


def test_broker_unreachable_still_acknowledges_a_stored_event(engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(load_settings()).test_client()
    body, headers = signed_clerk(clerk_user_event())
    response = client.post("/webhooks/clerk", data=body, headers=headers)
    assert response.status_code == 200
    assert response.json["enqueued"] is False
    with engine.connect() as connection:
        status = connection.execute(text('SELECT status FROM "WebhookEvent"')).scalar_one()
    assert status == "received"  # left for the sweeper
