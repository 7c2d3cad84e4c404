"""Test data as the web app, a provider or pedro-ingest itself leaves it: one small factory per kind of row,
so a column added to a table changes one place instead of every test module that wrote the row by hand."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Engine, text

from models.base import new_id
from tests.support.inbox import store_event
from tests.support.servers import scalar


def make_user(engine: Engine, opening: int = 40) -> tuple[str, str]:
    """A user whose balance the web app created (`opening` credits, no ledger row); returns (User.id, clerkId)."""
    user_id, clerk_id, _ = make_webapp_user(engine, opening)
    return user_id, clerk_id


def make_bare_user(engine: Engine, clerk_id: str | None = None) -> str:
    """A `User` row alone (no balance), as the web app writes it at sign-up; returns its id."""
    user_id = new_id()
    with engine.begin() as connection:
        connection.execute(
            text("""INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES (:id, :clerk, now())"""),
            {"id": user_id, "clerk": clerk_id or f"user_{secrets.token_hex(8)}"},
        )
    return user_id


def make_balance(engine: Engine, user_id: str, clerk_id: str, credits: int) -> str:
    """A `CreditBalance` the web app created by itself (Prisma default, no ledger row); returns its id."""
    balance_id = new_id()
    with engine.begin() as connection:
        connection.execute(
            text(
                """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
                   VALUES (:id, :user, :clerk, :credits, now())"""
            ),
            {"id": balance_id, "user": user_id, "clerk": clerk_id, "credits": credits},
        )
    return balance_id


def make_webapp_user(engine: Engine, credits: int) -> tuple[str, str, str]:
    """A user and balance the web app created by itself (no ledger row); returns (User.id, clerkId, balance id)."""
    clerk_id = f"user_{secrets.token_hex(8)}"
    user_id = make_bare_user(engine, clerk_id)
    return user_id, clerk_id, make_balance(engine, user_id, clerk_id, credits)


def make_pedro_user(engine: Engine, credits: int = 100) -> tuple[str, str, str]:
    """A user pedro-ingest opened (its Clerk handler, signup grant of `credits`); (User.id, clerkId, balance id)."""
    from models.db import transaction
    from workers.handlers.clerk_payloads import ClerkUser
    from workers.handlers.clerk_users import apply_clerk_user

    clerk_id = f"user_{secrets.token_hex(6)}"
    with transaction(engine) as session:
        apply_clerk_user(session, ClerkUser(id=clerk_id, updated_at=1), 1, None, credits)
    user_id = scalar(engine, 'SELECT id FROM "User" WHERE "clerkId" = :c', c=clerk_id)
    return user_id, clerk_id, scalar(engine, 'SELECT id FROM "CreditBalance" WHERE "userId" = :u', u=user_id)


def make_plan(engine: Engine, credits: int = 500, *, plan_id: str | None = None, **columns: str) -> str:
    """A `Plan` named Pro granting `credits`; `columns` sets others (`asaasId`, `clerkId`, ...); returns its id."""
    plan_id = plan_id or new_id()
    names = "".join(f', "{name}"' for name in columns)
    values = "".join(f", :{name}" for name in columns)
    with engine.begin() as connection:
        connection.execute(
            text(f"""INSERT INTO "Plan" (id, name, credits, "updatedAt"{names})
                     VALUES (:id, 'Pro', :credits, now(){values})"""),
            {"id": plan_id, "credits": credits, **columns},
        )
    return plan_id


def make_spend(engine: Engine, user_id: str, credits: int, operation: str = "AI_TEXT_CHAT") -> str:
    """What the web app does when a user spends: balance down and a usage row, in one transaction; the row's id."""
    usage_id = new_id()
    with engine.begin() as connection:
        balance_id = connection.execute(
            text("""UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" - :n, "updatedAt" = now()
                    WHERE "userId" = :u RETURNING id"""),
            {"n": credits, "u": user_id},
        ).scalar_one()  # fmt: skip
        connection.execute(
            text(
                """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed")
                   VALUES (:id, :u, :b, :op, :n)"""
            ),
            {"id": usage_id, "u": user_id, "b": balance_id, "op": operation, "n": credits},
        )
    return usage_id


def make_subscription_link(engine: Engine, user_id: str, asaas_subscription_id: str) -> str:
    """The row linking an Asaas subscription to its user, as an earlier checkout left it; returns its id."""
    link_id = new_id()
    with engine.begin() as connection:
        connection.execute(
            text("""INSERT INTO "AsaasSubscriptionLink" (id, "asaasSubscriptionId", "userId", "updatedAt")
                    VALUES (:id, :s, :u, now())"""),
            {"id": link_id, "s": asaas_subscription_id, "u": user_id},
        )  # fmt: skip
    return link_id


def make_inbox_event(
    engine: Engine,
    payload: dict[str, Any] | None = None,
    *,
    status: str = "received",
    received_at: dt.datetime | None = None,
    processed_at: dt.datetime | None = None,
    **options: Any,
) -> str:
    """An inbox row as the receiver stores it, then moved to `status` and the given times; returns its id."""
    from models.tables import EventStatus

    payload = payload if payload is not None else {"type": "user.created", "data": {"email": "someone@example.org"}}
    row_id = store_event(engine, payload, status=EventStatus(status), **options)
    with engine.begin() as connection:
        connection.execute(
            text("""UPDATE "WebhookEvent" SET "processedAt" = :processed,
                    "receivedAt" = COALESCE(:received, "receivedAt") WHERE id = :id"""),
            {"id": row_id, "processed": processed_at, "received": received_at},
        )  # fmt: skip
    return row_id
