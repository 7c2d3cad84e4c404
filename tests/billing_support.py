"""Helpers for the billing tests: users, plans, Asaas and Clerk Billing events, waiting, the ledger invariant."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import requests
from sqlalchemy import Engine, text

from models.base import new_id
from tests.support import FIXTURES, now_ms, signed_clerk, wait_for

ASAAS_TOKEN = "asaas-test-token"  # the service_env value
FINAL = ("processed", "ignored", "failed", "dead")


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params).all()]


def make_user(engine: Engine, opening: int = 40) -> tuple[str, str]:
    """A user whose balance the web app created (`opening` credits, no ledger row); returns (User.id, clerkId)."""
    user_id, clerk_id = new_id(), f"user_{secrets.token_hex(8)}"
    with engine.begin() as connection:
        connection.execute(
            text("""INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES (:id, :clerk, now())"""),
            {"id": user_id, "clerk": clerk_id},
        )
        connection.execute(
            text(
                """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
                   VALUES (:id, :user, :clerk, :opening, now())"""
            ),
            {"id": new_id(), "user": user_id, "clerk": clerk_id, "opening": opening},
        )
    return user_id, clerk_id


def make_plan(engine: Engine, credits: int = 500, **columns: str) -> str:
    plan_id = new_id()
    names = ", ".join(f'"{name}"' for name in columns)
    values = ", ".join(f":{name}" for name in columns)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"""INSERT INTO "Plan" (id, name, credits, "updatedAt"{", " + names if columns else ""})
                    VALUES (:id, 'Pro', :credits, now(){", " + values if columns else ""})"""
            ),
            {"id": plan_id, "credits": credits, **columns},
        )
    return plan_id


def balance(engine: Engine, user_id: str) -> int:
    return scalar(engine, 'SELECT "creditsRemaining" FROM "CreditBalance" WHERE "userId" = :u', u=user_id)


def ledger_sum(engine: Engine, user_id: str) -> int:
    return scalar(engine, 'SELECT COALESCE(-SUM("creditsUsed"), 0) FROM "UsageHistory" WHERE "userId" = :u', u=user_id)


def assert_balance_matches_ledger(engine: Engine, user_id: str, opening: int) -> None:
    assert balance(engine, user_id) == opening + ledger_sum(engine, user_id)


def grant_rows(engine: Engine, prefix: str) -> list[tuple]:
    return rows(
        engine,
        """SELECT "grantKey", amount FROM "CreditGrant" WHERE "grantKey" LIKE :p ORDER BY "createdAt", "grantKey" """,
        p=prefix + "%",
    )


# ---- Asaas ---------------------------------------------------------------------------------------------


def asaas_payment_event(
    event_type: str,
    payment_id: str,
    *,
    external_reference: str | None = None,
    subscription: str | None = None,
    billing_type: str = "CREDIT_CARD",
    value: float = 100,
    refunds: list[dict] | None = None,
) -> dict[str, Any]:
    """An Asaas payment event built from the documented sample, with a fresh event id."""
    event = copy.deepcopy(json.loads((FIXTURES / "asaas_payment_received.json").read_text()))
    event["id"] = f"evt_{secrets.token_hex(16)}&{secrets.randbelow(10**9)}"
    event["event"] = event_type
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
    )
    return event


def asaas_subscription_event(
    event_type: str, subscription_id: str, *, external_reference: str | None, status: str = "ACTIVE"
) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((FIXTURES / "asaas_subscription_created.json").read_text()))
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


# ---- Clerk Billing -------------------------------------------------------------------------------------


def clerk_item_event(
    event_type: str, item_id: str, clerk_id: str, *, period_start: int, status: str = "active", plan_id: str
) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((FIXTURES / "clerk_subscription_item_active.json").read_text()))
    event["type"] = event_type
    event["timestamp"] = now_ms()
    data = event["data"]
    data.update(id=item_id, status=status, period_start=period_start, period_end=period_start + 30 * 86_400_000)
    data["payer"]["user_id"] = clerk_id
    data["plan"]["id"] = data["plan_id"] = plan_id
    return event


def clerk_subscription_event(event_type: str, clerk_id: str, *, status: str = "active") -> dict[str, Any]:
    event = copy.deepcopy(json.loads((FIXTURES / "clerk_subscription_created.json").read_text()))
    event["type"] = event_type
    event["timestamp"] = now_ms()
    event["data"]["status"] = status
    event["data"]["payer"]["user_id"] = clerk_id
    return event


def post_clerk(base_url: str, event: dict, **signing: Any) -> requests.Response:
    body, headers = signed_clerk(event, **signing)
    return requests.post(f"{base_url}/webhooks/clerk", data=body, headers=headers, timeout=10)


# ---- waiting ---------------------------------------------------------------------------------------------


def settle(engine: Engine, count: int, timeout: float = 30) -> None:
    """Wait until `count` inbox rows are in a final or failed state."""
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status = ANY(:s)', s=list(FINAL)) >= count,
        timeout=timeout,
        what=f"{count} events settled",
    )
