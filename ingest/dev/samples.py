"""Realistic provider events for `pedro-ingest send-sample`: the documented samples with fresh ids.

Clerk events are signed with the svix library exactly as Svix signs them; Asaas events carry the
`asaas-access-token` header. The Asaas payment references the Clerk user and the demo plan `dev` seeds
(`externalReference`), so a new user sees a user appear and then the plan's credits.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svix.webhooks import Webhook

from ingest.dev.demo import demo_reference
from ingest.formats.dates import BRASILIA

SAMPLES_DIR = Path(__file__).parent / "sample_events"
_PAYMENT_DATES = ("dateCreated", "dueDate", "originalDueDate", "confirmedDate", "paymentDate", "clientPaymentDate")


@dataclass(frozen=True)
class SignedRequest:
    provider: str
    description: str
    path: str
    body: bytes
    headers: dict[str, str]


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / name).read_text())


def clerk_user_created(secret: str, *, clerk_id: str | None = None) -> SignedRequest:
    """A new user (fresh id, e-mail and Svix message id), signed now with `secret`."""
    event = copy.deepcopy(_sample("clerk_user_created.json"))
    clerk_id = clerk_id or f"user_{secrets.token_hex(8)}"
    now = dt.datetime.now(dt.UTC)
    stamp = int(now.timestamp() * 1000)
    data = event["data"]
    data.update(id=clerk_id, created_at=stamp, updated_at=stamp, first_name="Demo", last_name=clerk_id[-6:])
    data["email_addresses"][0]["email_address"] = f"demo+{clerk_id[-8:]}@example.org"
    event["timestamp"] = stamp
    body = json.dumps(event)
    msg_id = f"msg_{secrets.token_hex(12)}"
    headers = {
        "content-type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, now, body),
    }
    return SignedRequest("clerk", f"user.created {clerk_id}", "/webhooks/clerk", body.encode(), headers)


def asaas_payment_received(token: str, *, clerk_id: str) -> SignedRequest:
    """A new card purchase paid now for the Clerk user and the demo plan.

    Every id is fresh (event, payment and the installment the documented sample fills in), so each run is
    a purchase of its own and grants again. Asaas writes its dates in São Paulo time without an offset;
    the sample does the same with today's date, so that the event occurs when it is sent and the payment
    falls in the current period.
    """
    event = copy.deepcopy(_sample("asaas_payment_received.json"))
    payment_id = f"pay_{secrets.token_hex(6)}"
    now = dt.datetime.now(BRASILIA)
    today = now.date().isoformat()
    event["id"] = f"evt_{secrets.token_hex(16)}"
    event["dateCreated"] = now.strftime("%Y-%m-%d %H:%M:%S")
    event["payment"].update(
        id=payment_id,
        externalReference=demo_reference(clerk_id),
        subscription=None,
        installment=str(uuid.uuid4()),
        **dict.fromkeys(_PAYMENT_DATES, today),
    )
    headers = {"content-type": "application/json", "asaas-access-token": token}
    body = json.dumps(event).encode()
    return SignedRequest("asaas", f"{event['event']} {payment_id} for {clerk_id}", "/webhooks/asaas", body, headers)
