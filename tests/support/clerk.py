"""Clerk (Svix-signed) events as the tests send them: user and billing payloads, signatures, posting."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from typing import Any

import requests
from svix.webhooks import Webhook

from tests.support.fixtures import load_fixture

CLERK_SECRET = "whsec_" + base64.b64encode(b"pedro-ingest-test-signing-key-01").decode()


OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-tenant-signing-key-02").decode()


def now_ms() -> int:
    return int(time.time() * 1000)


def clerk_user_event(
    event_type: str = "user.created",
    *,
    clerk_id: str | None = None,
    email: str | None = "ada@example.org",
    first_name: str | None = "Ada",
    last_name: str | None = "Lovelace",
    updated_at: int | None = None,
) -> dict[str, Any]:
    """A Clerk `user.*` event built from the documented sample, with the fields the tests vary."""
    event = load_fixture("clerk_user_created.json")
    clerk_id = clerk_id or f"user_{secrets.token_hex(8)}"
    stamp = updated_at or now_ms()
    event["type"] = event_type
    event["timestamp"] = stamp
    if event_type == "user.deleted":
        event["data"] = {"deleted": True, "id": clerk_id, "object": "user"}
        return event
    data = event["data"]
    data["id"] = clerk_id
    data["first_name"] = first_name
    data["last_name"] = last_name
    data["updated_at"] = stamp
    data["created_at"] = stamp
    if email is None:
        data["email_addresses"] = []
        data["primary_email_address_id"] = None
    else:
        data["email_addresses"][0]["email_address"] = email
    return event


def svix_headers(
    body: str, *, secret: str = CLERK_SECRET, msg_id: str | None = None, timestamp: dt.datetime | None = None
) -> dict[str, str]:
    """Headers exactly as Svix sends them, signed with the svix library's own signer."""
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    timestamp = timestamp or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(timestamp.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }


def signed_clerk(event: dict[str, Any], **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event)
    return body.encode(), svix_headers(body, **kwargs)


def clerk_item_event(
    event_type: str, item_id: str, clerk_id: str, *, period_start: int, status: str = "active", plan_id: str
) -> dict[str, Any]:
    event = load_fixture("clerk_subscription_item_active.json")
    event["type"] = event_type
    event["timestamp"] = now_ms()
    data = event["data"]
    data.update(id=item_id, status=status, period_start=period_start, period_end=period_start + 30 * 86_400_000)
    data["payer"]["user_id"] = clerk_id
    data["plan"]["id"] = data["plan_id"] = plan_id
    return event


def clerk_subscription_event(event_type: str, clerk_id: str, *, status: str = "active") -> dict[str, Any]:
    event = load_fixture("clerk_subscription_created.json")
    event["type"] = event_type
    event["timestamp"] = now_ms()
    event["data"]["status"] = status
    event["data"]["payer"]["user_id"] = clerk_id
    return event


def post_clerk(base_url: str, event: dict, **signing: Any) -> requests.Response:
    body, headers = signed_clerk(event, **signing)
    return requests.post(f"{base_url}/webhooks/clerk", data=body, headers=headers, timeout=10)


def deliver_clerk(url: str, *events: dict[str, Any]) -> None:
    """Sign and post each event; every one must be accepted (200)."""
    for event in events:
        response = post_clerk(url, event)
        assert response.status_code == 200, response.text
