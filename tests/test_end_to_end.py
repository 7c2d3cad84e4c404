"""A real receiver (gunicorn) and a real Celery worker against real PostgreSQL and Redis."""

from __future__ import annotations

import requests
from sqlalchemy import Engine

from tests.support.clerk import clerk_user_event, now_ms, post_clerk, signed_clerk
from tests.support.processes import wait_for
from tests.support.servers import rows, scalar


def wait_until_final(engine: Engine, count: int) -> None:
    wait_for(
        lambda: (
            scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status IN ('processed', 'ignored')""") >= count
        ),
        timeout=30,
        what=f"{count} events processed",
    )


def user_state(engine: Engine, clerk_id: str) -> tuple | None:
    found = rows(engine, 'SELECT email, name, "isActive" FROM "User" WHERE "clerkId" = :c', c=clerk_id)
    return found[0] if found else None


def test_user_created_makes_user_balance_and_ledger_row_once(engine, worker, receiver_url) -> None:
    event = clerk_user_event("user.created", email="grace@example.org", first_name="Grace", last_name="Hopper")
    clerk_id = event["data"]["id"]
    body, headers = signed_clerk(event)
    first = requests.post(f"{receiver_url}/webhooks/clerk", data=body, headers=headers, timeout=10)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    wait_until_final(engine, 1)

    for _ in range(5):  # Svix redelivers the same message id
        again = requests.post(f"{receiver_url}/webhooks/clerk", data=body, headers=headers, timeout=10)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"

    assert user_state(engine, clerk_id) == ("grace@example.org", "Grace Hopper", True)
    assert rows(engine, 'SELECT "clerkUserId", "creditsRemaining" FROM "CreditBalance"') == [(clerk_id, 100)]
    assert rows(engine, 'SELECT "operationType"::text, "creditsUsed" FROM "UsageHistory"') == [("CREDIT_GRANT", -100)]
    assert rows(engine, 'SELECT "grantKey", amount FROM "CreditGrant"') == [(f"clerk:signup:{clerk_id}", 100)]
    assert scalar(engine, 'SELECT count(*) FROM "WebhookEvent"') == 1
    assert scalar(engine, 'SELECT status FROM "WebhookEvent"') == "processed"


def test_update_before_create_keeps_the_newest_state(engine, worker, receiver_url) -> None:
    created_at = now_ms() - 60_000
    created = clerk_user_event("user.created", email="old@example.org", first_name="Old", updated_at=created_at)
    clerk_id = created["data"]["id"]
    updated = clerk_user_event(
        "user.updated", clerk_id=clerk_id, email="new@example.org", first_name="New", updated_at=created_at + 5_000
    )
    assert post_clerk(receiver_url, updated).status_code == 200
    wait_until_final(engine, 1)
    assert post_clerk(receiver_url, created).status_code == 200
    wait_until_final(engine, 2)

    assert user_state(engine, clerk_id) == ("new@example.org", "New Lovelace", True)
    assert rows(engine, 'SELECT "creditsRemaining" FROM "CreditBalance"') == [(100,)]
    assert scalar(engine, 'SELECT count(*) FROM "UsageHistory"') == 1


def test_create_after_delete_stays_deleted(engine, worker, receiver_url) -> None:
    created_at = now_ms() - 60_000
    created = clerk_user_event("user.created", email="gone@example.org", updated_at=created_at)
    clerk_id = created["data"]["id"]
    deleted = clerk_user_event("user.deleted", clerk_id=clerk_id, updated_at=created_at + 1_000)

    # The web app already knew the user; Clerk's deletion arrives before the (older) creation.
    assert post_clerk(receiver_url, created).status_code == 200
    wait_until_final(engine, 1)
    assert post_clerk(receiver_url, deleted).status_code == 200
    wait_until_final(engine, 2)
    stale_update = clerk_user_event(
        "user.updated", clerk_id=clerk_id, email="zombie@example.org", updated_at=created_at
    )
    assert post_clerk(receiver_url, stale_update).status_code == 200
    wait_until_final(engine, 3)

    assert user_state(engine, clerk_id) == (None, None, False)
    assert scalar(engine, 'SELECT count(*) FROM "UsageHistory"') == 1  # history is kept for audit


def test_delete_first_then_late_create_creates_nothing(engine, worker, receiver_url) -> None:
    created_at = now_ms() - 60_000
    created = clerk_user_event("user.created", email="late@example.org", updated_at=created_at)
    clerk_id = created["data"]["id"]
    deleted = clerk_user_event("user.deleted", clerk_id=clerk_id, updated_at=created_at + 1_000)
    assert post_clerk(receiver_url, deleted).status_code == 200
    wait_until_final(engine, 1)
    assert post_clerk(receiver_url, created).status_code == 200
    wait_until_final(engine, 2)

    assert user_state(engine, clerk_id) is None
    assert scalar(engine, 'SELECT count(*) FROM "CreditBalance"') == 0


def test_unknown_event_type_is_stored_and_ignored(engine, worker, receiver_url) -> None:
    event = {"type": "session.created", "object": "event", "data": {"id": "sess_1"}, "timestamp": now_ms()}
    assert post_clerk(receiver_url, event).status_code == 200
    wait_until_final(engine, 1)
    assert rows(engine, 'SELECT "eventType", status FROM "WebhookEvent"') == [("session.created", "ignored")]


def test_invalid_user_payload_fails_with_a_reason(engine, worker, receiver_url) -> None:
    event = {"type": "user.created", "object": "event", "data": {"first_name": "no id"}, "timestamp": now_ms()}
    assert post_clerk(receiver_url, event).status_code == 200
    wait_for(lambda: scalar(engine, 'SELECT status FROM "WebhookEvent"') == "failed", 30, what="failed status")
    code, detail, attempts = rows(engine, 'SELECT "lastError", "lastErrorDetail", attempts FROM "WebhookEvent"')[0]
    assert code == "invalid_payload"
    assert "id" in detail and "no id" not in detail
    assert attempts == 1
    assert scalar(engine, 'SELECT count(*) FROM "User"') == 0
