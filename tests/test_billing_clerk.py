"""Clerk Billing end to end: one grant per subscription item and billing period, whatever the delivery."""

from __future__ import annotations

import copy
import json
import secrets

import pytest
import requests
from sqlalchemy import Engine

from tests.support.clerk import clerk_item_event, clerk_subscription_event, deliver_clerk, signed_clerk
from tests.support.fixtures import FIXTURES
from tests.support.ledger import assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user, settle
from tests.support.servers import rows, scalar

OPENING = 10
CREDITS = 300
DAY_MS = 86_400_000
P1 = 1_751_000_000_000
P2 = P1 + 30 * DAY_MS


@pytest.fixture
def subscriber(engine: Engine) -> tuple[str, str, str, str]:
    """(User.id, clerkId, Plan.id, Clerk plan id)."""
    user_id, clerk_id = make_user(engine, OPENING)
    clerk_plan = f"cplan_{secrets.token_hex(4)}"
    return user_id, clerk_id, make_plan(engine, CREDITS, clerkId=clerk_plan, clerkName="pro"), clerk_plan


def paid_attempt(clerk_id: str, item: dict) -> dict:
    event = copy.deepcopy(json.loads((FIXTURES / "clerk_payment_attempt_updated.json").read_text()))
    event["data"]["payer"]["user_id"] = clerk_id
    event["data"]["subscription_items"] = [item["data"]]
    return event


def test_created_active_and_renewal_grant_twice_despite_duplicates(engine, worker, receiver_url, subscriber) -> None:
    user_id, clerk_id, plan_id, clerk_plan = subscriber
    item = f"csub_item_{secrets.token_hex(4)}"
    created = clerk_subscription_event("subscription.created", clerk_id)
    active = clerk_item_event("subscriptionItem.active", item, clerk_id, period_start=P1, plan_id=clerk_plan)
    renewal = clerk_item_event("subscriptionItem.updated", item, clerk_id, period_start=P2, plan_id=clerk_plan)
    deliver_clerk(receiver_url, created, active, renewal)
    settle(engine, 3)
    # A Svix retry of one message (same svix-id) is a duplicate at the inbox ...
    body, headers = signed_clerk(active)
    answers = [requests.post(f"{receiver_url}/webhooks/clerk", data=body, headers=headers, timeout=10) for _ in "ab"]
    assert [answer.json()["status"] for answer in answers] == ["accepted", "duplicate"]
    # ... and other events describing the same facts (new message ids) find the grant keys taken.
    deliver_clerk(receiver_url, renewal, paid_attempt(clerk_id, renewal))
    settle(engine, 6)

    key = f"clerk:subscription_item:{item}"
    assert grant_rows(engine, key) == [(f"{key}:{P1}", CREDITS), (f"{key}:{P2}", CREDITS)]
    assert balance(engine, user_id) == OPENING + 2 * CREDITS
    assert scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == 6
    log = rows(engine, 'SELECT "eventType", status, "planKey", metadata FROM "SubscriptionEvent" ORDER BY "createdAt"')
    assert len(log) == 6  # one row per event
    assert [(event, status) for event, status, _, _ in log][:3] == [
        ("subscription.created", "active"),
        ("subscriptionItem.active", "active"),
        ("subscriptionItem.updated", "active"),
    ]
    assert {plan for _, _, plan, _ in log[1:]} == {plan_id}
    assert all(meta["provider"] == "clerk" and "email" not in json.dumps(meta) for *_, meta in log)
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_reordered_delivery_still_grants_once_per_period(engine, worker, receiver_url, subscriber) -> None:
    user_id, clerk_id, _, clerk_plan = subscriber
    item = f"csub_item_{secrets.token_hex(4)}"
    active = clerk_item_event("subscriptionItem.active", item, clerk_id, period_start=P1, plan_id=clerk_plan)
    renewal = clerk_item_event("subscriptionItem.updated", item, clerk_id, period_start=P2, plan_id=clerk_plan)
    deliver_clerk(receiver_url, paid_attempt(clerk_id, renewal), renewal)
    settle(engine, 2)
    deliver_clerk(receiver_url, active, clerk_subscription_event("subscription.created", clerk_id), active)
    settle(engine, 5)

    assert len(grant_rows(engine, f"clerk:subscription_item:{item}")) == 2
    assert balance(engine, user_id) == OPENING + 2 * CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_past_due_and_upcoming_items_grant_nothing_and_are_logged(engine, worker, receiver_url, subscriber) -> None:
    user_id, clerk_id, _, plan = subscriber
    item = f"csub_item_{secrets.token_hex(4)}"
    deliver_clerk(
        receiver_url,
        clerk_item_event("subscriptionItem.pastDue", item, clerk_id, period_start=P2, status="past_due", plan_id=plan),
        clerk_item_event("subscriptionItem.upcoming", item, clerk_id, period_start=P2, status="upcoming", plan_id=plan),
        clerk_subscription_event("subscription.past_due", clerk_id, status="past_due"),
    )
    settle(engine, 3)

    assert balance(engine, user_id) == OPENING
    assert scalar(engine, 'SELECT count(*) FROM "CreditGrant"') == 0
    assert sorted(rows(engine, 'SELECT "eventType", status FROM "SubscriptionEvent"')) == [
        ("subscription.past_due", "past_due"),
        ("subscriptionItem.pastDue", "past_due"),
        ("subscriptionItem.upcoming", "upcoming"),
    ]


def test_active_item_of_an_unknown_paid_plan_fails_for_replay(engine, worker, receiver_url, subscriber) -> None:
    user_id, clerk_id, _, _ = subscriber
    event = clerk_item_event("subscriptionItem.active", "csub_item_x", clerk_id, period_start=P1, plan_id="cplan_nope")
    event["data"]["plan"]["slug"] = "enterprise"
    deliver_clerk(receiver_url, event)
    settle(engine, 1)
    assert rows(engine, 'SELECT status, "lastError" FROM "WebhookEvent"') == [("failed", "unlinked_plan")]
    assert balance(engine, user_id) == OPENING
    assert scalar(engine, 'SELECT count(*) FROM "SubscriptionEvent"') == 0  # rolled back with the attempt


@pytest.mark.parametrize("configured", [True, False], ids=["plan-configured", "plan-unknown"])
def test_a_failed_payment_attempt_logs_its_plan_and_grants_nothing(
    engine, worker, receiver_url, subscriber, configured
) -> None:
    """planKey: `Plan.id` when resolved, else Clerk's slug; with several items, the first item's."""
    user_id, clerk_id, plan_id, clerk_plan = subscriber
    first_plan = clerk_plan if configured else f"cplan_{secrets.token_hex(4)}"
    first = clerk_item_event("subscriptionItem.active", "csub_item_a", clerk_id, period_start=P1, plan_id=first_plan)
    second = clerk_item_event("subscriptionItem.active", "csub_item_b", clerk_id, period_start=P1, plan_id=clerk_plan)
    if not configured:
        first["data"]["plan"]["slug"] = "unknown-slug"
    attempt = paid_attempt(clerk_id, first)
    attempt["data"]["status"] = "failed"
    attempt["data"]["subscription_items"].append(second["data"])
    deliver_clerk(receiver_url, attempt)
    settle(engine, 1)

    assert rows(engine, 'SELECT "eventType", status, "planKey" FROM "SubscriptionEvent"') == [
        ("paymentAttempt.updated", "payment_failed", plan_id if configured else "unknown-slug")
    ]
    assert scalar(engine, 'SELECT count(*) FROM "CreditGrant"') == 0
    assert balance(engine, user_id) == OPENING
