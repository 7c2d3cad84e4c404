"""The Clerk endpoint against real PostgreSQL and Redis: every refusal is specific and stores nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, text

from tests.support.clerk import OTHER_SECRET, clerk_user_event, signed_clerk, svix_headers


def stored_events(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            text('SELECT provider, "eventId", "eventType", status FROM "WebhookEvent" ORDER BY "receivedAt"')
        ).all()


def post(client, body: bytes, headers: dict[str, str]):
    return client.post("/webhooks/clerk", data=body, headers=headers)


def test_signed_event_is_stored_once_and_enqueued(client, engine: Engine) -> None:
    body, headers = signed_clerk(clerk_user_event())
    first = post(client, body, headers)
    assert first.status_code == 200
    assert first.json["status"] == "accepted"
    assert first.json["enqueued"] is True
    for _ in range(4):
        again = post(client, body, headers)
        assert again.status_code == 200
        assert again.json == {"status": "duplicate"}
    [(provider, event_id, event_type, status)] = stored_events(engine)
    assert (provider, event_id, event_type) == ("clerk", headers["svix-id"], "user.created")
    assert status in {"enqueued", "processed"}  # a session worker may already have applied it


def test_secret_rotation_accepts_either_secret(engine: Engine, monkeypatch) -> None:
    from ingest.config.settings import load_settings
    from ingest.http.app import create_app
    from tests.support.clerk import CLERK_SECRET

    settings = load_settings(clerk_webhook_secret=f"{OTHER_SECRET}, {CLERK_SECRET}")
    client = create_app(settings).test_client()
    for secret in (CLERK_SECRET, OTHER_SECRET):
        body, headers = signed_clerk(clerk_user_event(), secret=secret)
        assert post(client, body, headers).status_code == 200
    assert len(stored_events(engine)) == 2


def forged_signature() -> tuple[bytes, dict[str, str]]:
    body, headers = signed_clerk(clerk_user_event())
    return body.replace(b"Ada", b"Eve"), headers


def wrong_secret() -> tuple[bytes, dict[str, str]]:
    return signed_clerk(clerk_user_event(), secret=OTHER_SECRET)


def expired() -> tuple[bytes, dict[str, str]]:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    return signed_clerk(clerk_user_event(), timestamp=old)


def from_the_future() -> tuple[bytes, dict[str, str]]:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    return signed_clerk(clerk_user_event(), timestamp=later)


def missing_headers() -> tuple[bytes, dict[str, str]]:
    body, headers = signed_clerk(clerk_user_event())
    del headers["svix-signature"]
    return body, headers


def garbage_signature() -> tuple[bytes, dict[str, str]]:
    body, headers = signed_clerk(clerk_user_event())
    headers["svix-signature"] = "v1,@@@not-base64 nonsense"
    return body, headers


def not_json() -> tuple[bytes, dict[str, str]]:
    body = "this is not json"
    return body.encode(), svix_headers(body)


def json_array() -> tuple[bytes, dict[str, str]]:
    body = "[1, 2, 3]"
    return body.encode(), svix_headers(body)


def no_type() -> tuple[bytes, dict[str, str]]:
    event = clerk_user_event()
    del event["type"]
    return signed_clerk(event)


def nul_escape() -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "user.created", "data": {"id": "user_x", "first_name": "a\u0000b"}})
    return body.encode(), svix_headers(body)


def wrong_content_type() -> tuple[bytes, dict[str, str]]:
    body, headers = signed_clerk(clerk_user_event())
    headers["content-type"] = "text/plain"
    return body, headers


def oversized() -> tuple[bytes, dict[str, str]]:
    event = clerk_user_event()
    event["data"]["public_metadata"] = {"blob": "x" * (1_048_576 + 10)}
    return signed_clerk(event)


@pytest.mark.parametrize(
    ("make_request", "status", "code"),
    [
        (forged_signature, 401, "invalid_signature"),
        (wrong_secret, 401, "invalid_signature"),
        (expired, 401, "timestamp_out_of_tolerance"),
        (from_the_future, 401, "timestamp_out_of_tolerance"),
        (garbage_signature, 401, "invalid_signature"),
        (missing_headers, 400, "missing_headers"),
        (not_json, 400, "invalid_json"),
        (json_array, 400, "invalid_json"),
        (no_type, 400, "missing_event_type"),
        (nul_escape, 400, "invalid_json"),
        (wrong_content_type, 415, "unsupported_media_type"),
        (oversized, 413, "body_too_large"),
    ],
)
def test_refusals_are_specific_and_store_nothing(client, engine: Engine, make_request, status: int, code: str) -> None:
    body, headers = make_request()
    response = post(client, body, headers)
    assert response.status_code == status, response.json
    assert response.json["error"] == code
    assert isinstance(response.json["detail"], str) and response.json["detail"]
    assert "whsec_" not in response.get_data(as_text=True)
    assert b"Lovelace" not in response.get_data()
    assert stored_events(engine) == []


def test_unconfigured_provider_refuses_everything(engine: Engine) -> None:
    from ingest.config.settings import load_settings
    from ingest.http.app import create_app

    client = create_app(load_settings(clerk_webhook_secret=None)).test_client()
    body, headers = signed_clerk(clerk_user_event())
    response = post(client, body, headers)
    assert response.status_code == 503
    assert response.json["error"] == "provider_not_configured"
    assert stored_events(engine) == []


def test_unknown_route_and_method_answer_json(client, engine: Engine) -> None:
    assert client.get("/webhooks/clerk").json["error"] == "method_not_allowed"
    assert client.post("/webhooks/nope").json["error"] == "not_found"
