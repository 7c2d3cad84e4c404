"""The Asaas endpoint: token first, 401 stores nothing, and any authentic stored body is answered 200."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import Engine

from ingest.config.settings import ConfigError, load_settings, parse_networks
from ingest.formats.dates import parse_date
from ingest.receiver.errors import WebhookRejected
from ingest.receiver.verification import IpAllowList
from tests.support.asaas import ASAAS_TOKEN, asaas_payment_event
from tests.support.servers import rows


def post(client, body: bytes, token: str | None = ASAAS_TOKEN, **headers: str):
    if token is not None:
        headers["asaas-access-token"] = token
    return client.post("/webhooks/asaas", data=body, headers={"content-type": "application/json", **headers})


def stored(engine: Engine) -> list[tuple]:
    return rows(engine, 'SELECT provider, "eventId", "eventType", status, "lastError" FROM "WebhookEvent"')


def test_authentic_event_is_stored_once_with_its_envelope_id(client, engine) -> None:
    event = asaas_payment_event("PAYMENT_RECEIVED", "pay_1")
    body = json.dumps(event).encode()
    first = post(client, body)
    assert first.status_code == 200 and first.json["status"] == "accepted"
    assert post(client, body).json == {"status": "duplicate"}
    [(provider, event_id, event_type, status, error)] = stored(engine)
    assert (provider, event_id, event_type) == ("asaas", event["id"], "PAYMENT_RECEIVED")
    # A session worker may already have applied it: it names no user, so the policy ignores it with its reason.
    assert (status, error) in {("enqueued", None), ("ignored", "unlinked_payment")}
    # Asaas's naive "2024-06-12 16:45:03" is Brasília time: 19:45:03 UTC.
    assert rows(engine, 'SELECT "occurredAt" FROM "WebhookEvent"') == [(dt.datetime(2024, 6, 12, 19, 45, 3),)]


@pytest.mark.parametrize(
    ("token", "code"), [(None, "missing_token"), ("wrong", "invalid_token"), ("", "missing_token")]
)
def test_wrong_or_missing_token_is_401_and_stores_nothing(client, engine, token, code) -> None:
    response = post(client, json.dumps(asaas_payment_event("PAYMENT_RECEIVED", "pay_2")).encode(), token=token)
    assert response.status_code == 401
    assert response.json["error"] == code
    assert ASAAS_TOKEN not in response.get_data(as_text=True)
    assert stored(engine) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "invalid_payload"),
        (b"\xff\xfe binary", "invalid_payload"),
        (b"[1, 2]", "invalid_payload"),
        (b'{"id": "evt_no_type", "payment": {}}', "invalid_payload"),
        (b'{"id": "evt_nul", "event": "PAYMENT_RECEIVED", "x": "\\u0000"}', "invalid_payload"),
    ],
)
def test_authentic_unparseable_body_is_200_and_stored_failed(client, engine, body, problem) -> None:
    response = post(client, body)
    assert response.status_code == 200
    assert response.json["enqueued"] is False
    ((provider, event_id, _, status, error),) = stored(engine)
    assert (provider, status, error) == ("asaas", "failed", problem)
    if b"evt_" not in body:
        assert event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert post(client, body).json == {"status": "duplicate"}
    (payload,) = rows(engine, 'SELECT payload FROM "WebhookEvent"')[0]
    assert payload is not None  # kept for inspection and replay


def test_asaas_content_type_is_not_required_once_authenticated(client, engine) -> None:
    body = json.dumps(asaas_payment_event("PAYMENT_RECEIVED", "pay_3")).encode()
    response = client.post("/webhooks/asaas", data=body, headers={"asaas-access-token": ASAAS_TOKEN})
    assert response.status_code == 200
    assert len(stored(engine)) == 1


def test_token_rotation_and_not_configured(engine) -> None:
    from ingest.http.app import create_app

    rotating = create_app(load_settings(asaas_webhook_token=f"new-token-0123456789, {ASAAS_TOKEN}")).test_client()
    for token in ("new-token-0123456789", ASAAS_TOKEN):
        body = json.dumps(asaas_payment_event("PAYMENT_RECEIVED", f"pay_{token}")).encode()
        assert post(rotating, body, token=token).status_code == 200
    unconfigured = create_app(load_settings(asaas_webhook_token="")).test_client()
    response = post(unconfigured, b"{}")
    assert response.status_code == 503 and response.json["error"] == "provider_not_configured"


def test_ip_allow_list_honours_forwarded_for_only_behind_a_trusted_proxy(engine) -> None:
    from ingest.http.app import create_app

    settings = load_settings(asaas_allowed_ips="52.67.12.0/24", asaas_trusted_proxies="127.0.0.1")
    client = create_app(settings).test_client()
    body = json.dumps(asaas_payment_event("PAYMENT_RECEIVED", "pay_ip")).encode()
    # The test client's peer is 127.0.0.1, a trusted proxy: X-Forwarded-For names the client.
    denied = post(client, body, **{"X-Forwarded-For": "52.67.12.9, 10.0.0.8"})
    assert denied.status_code == 403 and denied.json["error"] == "ip_not_allowed"
    assert post(client, body, **{"X-Forwarded-For": "10.0.0.8, 52.67.12.9"}).status_code == 200
    assert post(client, b"{}", token="wrong", **{"X-Forwarded-For": "52.67.12.9"}).status_code == 401

    untrusting = IpAllowList(allowed=parse_networks("52.67.12.0/24"), trusted_proxies=[])
    with pytest.raises(WebhookRejected, match="ip_not_allowed"):
        untrusting.check("127.0.0.1", {"X-Forwarded-For": "52.67.12.9"})  # a forged header is not believed


def test_bad_ip_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ASAAS_ALLOWED_IPS"):
        load_settings(asaas_allowed_ips="10.0.0.0/8, not-an-ip")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-06-12 16:45:03", dt.datetime(2024, 6, 12, 19, 45, 3)),
        ("2021-01-01", dt.datetime(2021, 1, 1, 3, 0)),
        ("16/10/2024", dt.datetime(2024, 10, 16, 3, 0)),
        ("16/10/2024 11:11:04", dt.datetime(2024, 10, 16, 14, 11, 4)),
        ("2024-06-12T16:45:03Z", dt.datetime(2024, 6, 12, 16, 45, 3)),
        ("2024-06-12T16:45:03-03:00", dt.datetime(2024, 6, 12, 19, 45, 3)),
        (1654012591835, dt.datetime(2022, 5, 31, 15, 56, 31, 835000)),
        ("31/02/2024", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        ({"a": 1}, None),
        ("9" * 60, None),
    ],
)
def test_dates_are_parsed_defensively(raw, expected) -> None:
    assert parse_date(raw) == expected
