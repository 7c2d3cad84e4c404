"""One bad event never fails its batch; the address is checked before the token; labels stay bounded;
weak secrets are refused at start. Against a real receiver where batching matters, in process elsewhere."""

from __future__ import annotations

import base64
import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from ingest.config.settings import ConfigError, load_settings
from ingest.http.app import create_app
from ingest.http.operations_app import create_operations_app
from ingest.observability.event_types import KNOWN, OTHER
from tests.support.asaas import ASAAS_TOKEN, asaas_payment_event
from tests.support.clerk import clerk_user_event, signed_clerk, svix_headers
from tests.support.servers import rows

NESTED = "[" * 100_000 + "]" * 100_000  # RecursionError in Python's parser
NESTED_100 = '{"type": "user.created", "a": ' + "[" * 100 + "]" * 100 + "}"  # parses, deeper than allowed


def signed_raw(body: bytes, **kwargs) -> dict[str, str]:
    return svix_headers(body.decode("utf-8"), **kwargs)


def bad_requests() -> list[tuple[str, str, bytes, dict[str, str], int, str]]:
    """(name, path, body, headers, status, error or stored status) for each bad body the receiver must survive."""
    event = json.dumps(clerk_user_event())
    asaas = {"content-type": "application/json", "asaas-access-token": ASAAS_TOKEN}
    payment = json.dumps(asaas_payment_event("PAYMENT_RECEIVED", f"pay_{secrets.token_hex(4)}"))
    cases = [
        ("clerk utf-16-le", event.encode("utf-16-le")),
        ("clerk utf-32-le", event.encode("utf-32-le")),
        ("clerk deeply nested", NESTED.encode()),
        ("clerk 100 levels", NESTED_100.encode()),
        ("clerk nul escape", event.replace('"first_name": "', '"first_name": "\\u0000', 1).encode()),
    ]
    found = [(name, "/webhooks/clerk", body, signed_raw(body), 400, "invalid_json") for name, body in cases]
    long_id = json.dumps(clerk_user_event()).encode()
    found.append(("clerk long svix-id", "/webhooks/clerk", long_id, signed_raw(long_id, msg_id="msg_" + "x" * 5000),
                  400, "invalid_header"))  # fmt: skip
    for name, body in [
        ("asaas utf-16-le", payment.encode("utf-16-le")),
        ("asaas deeply nested", NESTED.encode()),
        ("asaas nul escape", payment.replace('"id": "', '"id": "\\u0000', 1).encode()),
    ]:
        found.append((name, "/webhooks/asaas", body, asaas, 200, "failed"))
    return found


def test_a_burst_of_valid_events_mixed_with_every_bad_body(receiver_url: str, engine: Engine) -> None:
    valid = [signed_clerk(clerk_user_event()) for _ in range(40)]
    bad = bad_requests()
    work = [("valid", "/webhooks/clerk", body, headers, 200, "") for body, headers in valid] + bad
    work = work[::2] + work[1::2]  # bad bodies among the valid ones, all in flight at once

    def post(item):
        _, path, body, headers, _, _ = item
        return requests.post(f"{receiver_url}{path}", data=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(len(work)) as pool:
        answers = list(pool.map(post, work))

    for (name, _, _, _, status, expected), answer in zip(work, answers, strict=True):
        assert answer.status_code == status, (name, answer.text)
        if status >= 400:
            assert answer.json()["error"] == expected, name
    stored = dict(rows(engine, 'SELECT "eventId", count(*) FROM "WebhookEvent" GROUP BY 1'))
    assert all(stored.get(headers["svix-id"]) == 1 for _, headers in valid)
    by_provider = dict(rows(engine, """SELECT provider || ':' || status, count(*) FROM "WebhookEvent" GROUP BY 1"""))
    assert by_provider.get("asaas:failed") == 3  # authentic Asaas bodies: stored failed, answered 200
    assert sum(count for key, count in by_provider.items() if key.startswith("clerk:")) == len(valid)


def _asaas(client, body: bytes, token: str | None, remote: str):
    headers = {"content-type": "application/json"} | ({"asaas-access-token": token} if token else {})
    return client.post("/webhooks/asaas", data=body, headers=headers, environ_base={"REMOTE_ADDR": remote})


def test_a_refused_address_learns_nothing_about_the_token(engine: Engine) -> None:
    client = create_app(load_settings(asaas_allowed_ips="52.67.12.0/24")).test_client()
    body = json.dumps(asaas_payment_event("PAYMENT_RECEIVED", "pay_addr")).encode()
    answers = {token: _asaas(client, body, token, "198.51.100.7") for token in (ASAAS_TOKEN, "wrong-token", None)}
    assert {answer.status_code for answer in answers.values()} == {403}
    assert {answer.json["error"] for answer in answers.values()} == {"ip_not_allowed"}
    assert _asaas(client, body, "wrong-token", "52.67.12.9").status_code == 401


def test_ipv4_mapped_addresses_match_the_allow_list(engine: Engine) -> None:
    client = create_app(load_settings(asaas_allowed_ips="52.67.12.0/24")).test_client()
    body = json.dumps(asaas_payment_event("PAYMENT_RECEIVED", "pay_mapped")).encode()
    assert _asaas(client, body, ASAAS_TOKEN, "::ffff:52.67.12.9").status_code == 200
    assert _asaas(client, body, ASAAS_TOKEN, "::ffff:198.51.100.7").status_code == 403


def test_event_type_labels_are_known_types_or_other(engine: Engine) -> None:
    client = create_app(load_settings()).test_client()
    for number in range(30):
        event = asaas_payment_event("PAYMENT_RECEIVED", f"pay_label_{number}")
        event["event"] = f"INVENTED_{secrets.token_hex(6)}"
        assert _asaas(client, json.dumps(event).encode(), ASAAS_TOKEN, "127.0.0.1").status_code == 200
    exposition = create_operations_app(load_settings(ops_cache_seconds=0)).test_client().get("/metrics").text
    labels = {
        sample.labels["event_type"]
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "pedro_ingest_webhooks_received_total"
    }
    assert OTHER in labels and labels <= KNOWN | {OTHER}


def test_every_handled_event_type_is_a_known_label() -> None:
    from workers.handlers import HANDLERS

    assert {event_type for _, event_type in HANDLERS} <= KNOWN


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"asaas_webhook_token": "x"}, "ASAAS_WEBHOOK_TOKEN"),
        ({"asaas_webhook_token": "a" * 40}, "ASAAS_WEBHOOK_TOKEN"),
        ({"clerk_webhook_secret": "whsec_" + base64.b64encode(b"k").decode()}, "CLERK_WEBHOOK_SECRET"),
    ],
)
def test_weak_secrets_are_refused_at_start(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(**overrides)
