"""Asaas events as the tests send them: payment and subscription payloads, posting with the token."""

from __future__ import annotations

import json
import secrets
from typing import Any

import requests

from tests.support.fixtures import load_fixture

ASAAS_TOKEN = "asaas-test-token"  # the service_env value


def asaas_payment_event(
    event_type: str,
    payment_id: str,
    *,
    external_reference: str | None = None,
    subscription: str | None = None,
    billing_type: str = "CREDIT_CARD",
    value: float = 100,
    refunds: list[dict] | None = None,
    installment: str | None = None,
    installment_number: int | None = None,
    chargeback: dict | None = None,
    checkout_session: str | None = None,
    date_created: str | None = None,
) -> dict[str, Any]:
    """An Asaas payment event built from the documented sample, with a fresh event id (a single payment
    unless `installment` names the purchase it is one installment of)."""
    event = load_fixture("asaas_payment_received.json")
    event["id"] = f"evt_{secrets.token_hex(16)}&{secrets.randbelow(10**9)}"
    event["event"] = event_type
    if date_created is not None:  # Asaas's envelope time: naive São Paulo time, "YYYY-MM-DD HH:MM:SS"
        event["dateCreated"] = date_created
    payment = event["payment"]
    payment.update(
        id=payment_id,
        externalReference=external_reference,
        subscription=subscription,
        paymentLink=None,
        billingType=billing_type,
        value=value,
        refunds=refunds,
        status=event_type.removeprefix("PAYMENT_"),
        installment=installment,
        installmentNumber=installment_number,
        chargeback=chargeback,
        checkoutSession=checkout_session,
    )
    return event


def asaas_checkout_event(
    event_type: str,
    checkout_id: str,
    *,
    external_reference: str | None,
    charge_type: str = "DETACHED",
    subscription_id: str | None = None,
) -> dict[str, Any]:
    """A `CHECKOUT_*` event built from the docs' example (a recurrent checkout), with a fresh event id; a
    one-off checkout unless `charge_type` is `RECURRENT` (then `subscription_id`, if given, names the
    subscription Asaas created)."""
    event = load_fixture("official/asaas/docs_checkout_created.json")
    event["id"] = f"evt_{secrets.token_hex(16)}&{secrets.randbelow(10**9)}"
    event["event"] = event_type
    checkout = event["checkout"]
    status = {"CHECKOUT_CREATED": "ACTIVE", "CHECKOUT_PAID": "PAID"}.get(event_type, event_type.split("_", 1)[1])
    checkout.update(id=checkout_id, status=status, chargeTypes=[charge_type], externalReference=external_reference)
    if charge_type == "RECURRENT":
        checkout["subscription"]["id"] = subscription_id
    else:
        checkout["subscription"] = None
    return event


def asaas_subscription_event(
    event_type: str, subscription_id: str, *, external_reference: str | None, status: str = "ACTIVE"
) -> dict[str, Any]:
    event = load_fixture("asaas_subscription_created.json")
    event["id"] = f"evt_{secrets.token_hex(16)}&{secrets.randbelow(10**9)}"
    event["event"] = event_type
    event["subscription"].update(id=subscription_id, externalReference=external_reference, status=status)
    return event


def post_asaas(base_url: str, event: dict | bytes, token: str | None = ASAAS_TOKEN) -> requests.Response:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["asaas-access-token"] = token
    return requests.post(f"{base_url}/webhooks/asaas", data=body, headers=headers, timeout=10)


def deliver_asaas(url: str, *events: dict[str, Any]) -> None:
    """Post each event with the token; every one must be accepted (200)."""
    for event in events:
        response = post_asaas(url, event)
        assert response.status_code == 200, response.text
