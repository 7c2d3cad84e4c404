"""Asaas plan grants end to end: real receiver (gunicorn), PostgreSQL, Redis and Celery workers.

After every scenario the user's balance equals the opening balance plus the ledger sum.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from ingest.broker.publisher import CeleryPublisher
from ingest.broker.replay import replay_ids
from tests.support.asaas import asaas_payment_event, asaas_subscription_event, deliver_asaas
from tests.support.factories import make_spend
from tests.support.ledger import assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user, settle
from tests.support.processes import Process, cli_argv, wait_for
from tests.support.servers import REDIS_URL, rows, scalar

OPENING = 40
CREDITS = 500


@pytest.fixture
def customer(engine: Engine) -> tuple[str, str, str]:
    """(User.id, clerkId, Plan.id): a user with an opening balance and a 500-credit plan."""
    user_id, clerk_id = make_user(engine, OPENING)
    return user_id, clerk_id, make_plan(engine, CREDITS, asaasId=f"plan_{secrets.token_hex(4)}")


def payment_id() -> str:
    return f"pay_{secrets.token_hex(6)}"


def subscription_log(engine: Engine, clerk_id: str) -> list[tuple]:
    return rows(
        engine,
        """SELECT "eventType", status, "planKey" FROM "SubscriptionEvent" WHERE "clerkUserId" = :c
           ORDER BY "createdAt", "eventType" """,
        c=clerk_id,
    )


@pytest.mark.parametrize(
    "order", [("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"), ("PAYMENT_RECEIVED", "PAYMENT_CONFIRMED")]
)
def test_card_payment_grants_once_whatever_the_order(engine, worker, receiver_url, customer, order) -> None:
    user_id, clerk_id, plan_id = customer
    pay = payment_id()
    reference = f"{clerk_id}|plan:{plan_id}"
    for count, event_type in enumerate(order, start=1):
        deliver_asaas(receiver_url, asaas_payment_event(event_type, pay, external_reference=reference))
        settle(engine, count)

    assert grant_rows(engine, f"asaas:payment:{pay}") == [(f"asaas:payment:{pay}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)
    ledger = rows(engine, 'SELECT "operationType"::text, "creditsUsed", details FROM "UsageHistory"')
    assert len(ledger) == 1
    operation, used, details = ledger[0]
    assert (operation, used) == ("CREDIT_GRANT", -CREDITS)
    assert details["provider"] == "asaas" and details["paymentId"] == pay and details["planId"] == plan_id
    assert details["eventType"] == order[0] and details["eventId"].startswith("evt_")
    assert subscription_log(engine, clerk_id) == [(order[0], "active", plan_id), (order[1], "active", plan_id)]


@pytest.fixture
def second_worker(service_env, tmp_path) -> Iterator[Process]:
    """Another worker host (two processes) on the same queue, so deliveries really race."""
    process = Process(
        cli_argv("worker", "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
                 f"race-{secrets.token_hex(3)}@%h"),
        service_env, tmp_path / "worker2.log",
    )  # fmt: skip
    process.wait_for_output("ready.", timeout=60)
    yield process
    process.stop()


def test_redelivered_confirmed_and_received_on_concurrent_workers_grant_once(
    engine, worker, second_worker, receiver_url, customer, queue_name
) -> None:
    user_id, clerk_id, plan_id = customer
    pay = payment_id()
    events = [
        asaas_payment_event(name, pay, external_reference=f"{clerk_id}|plan:{plan_id}")
        for name in ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED")
    ]
    for _ in range(3):  # Asaas redelivers each event; the inbox answers duplicates with 200
        deliver_asaas(receiver_url, *events)
    row_ids = [row[0] for row in rows(engine, 'SELECT id FROM "WebhookEvent"')]
    assert len(row_ids) == 2
    publisher = CeleryPublisher(REDIS_URL, queue_name)
    for _ in range(4):  # and the broker redelivers tasks: both rows race on three worker processes
        for row_id in row_ids:
            assert publisher.publish(row_id)
    settle(engine, 2)
    wait_for(lambda: scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == 2)

    assert grant_rows(engine, "asaas:") == [(f"asaas:payment:{pay}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert scalar(engine, 'SELECT count(*) FROM "UsageHistory"') == 1
    assert scalar(engine, 'SELECT count(*) FROM "SubscriptionEvent"') == 2
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_pix_received_only_grants_once_and_created_overdue_do_not(engine, worker, receiver_url, customer) -> None:
    user_id, clerk_id, plan_id = customer
    pix, later = payment_id(), payment_id()
    reference = f"{clerk_id}|plan:{plan_id}"
    deliver_asaas(
        receiver_url,
        asaas_payment_event("PAYMENT_CREATED", later, external_reference=reference, billing_type="PIX"),
        asaas_payment_event("PAYMENT_OVERDUE", later, external_reference=reference, billing_type="PIX"),
        asaas_payment_event("PAYMENT_RECEIVED", pix, external_reference=reference, billing_type="PIX"),
    )
    settle(engine, 3)

    assert grant_rows(engine, "asaas:") == [(f"asaas:payment:{pix}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert rows(engine, """SELECT "eventType", status FROM "WebhookEvent" WHERE "eventType" = 'PAYMENT_CREATED'""") == [
        ("PAYMENT_CREATED", "ignored")
    ]
    assert sorted(subscription_log(engine, clerk_id)) == [
        ("PAYMENT_OVERDUE", "past_due", plan_id),
        ("PAYMENT_RECEIVED", "active", plan_id),
    ]
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_refund_after_grant_restores_the_balance_once(engine, worker, receiver_url, customer) -> None:
    user_id, clerk_id, plan_id = customer
    pay = payment_id()
    reference = f"{clerk_id}|plan:{plan_id}"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference))
    settle(engine, 1)
    deliver_asaas(
        receiver_url,
        asaas_payment_event("PAYMENT_REFUNDED", pay, external_reference=reference),
        asaas_payment_event("PAYMENT_CHARGEBACK_REQUESTED", pay, external_reference=reference),
    )
    settle(engine, 3)

    assert balance(engine, user_id) == OPENING
    assert sorted(grant_rows(engine, "asaas:")) == [
        (f"asaas:payment:{pay}", CREDITS),
        (f"asaas:payment:{pay}:reversal", -CREDITS),
        (f"asaas:payment:{pay}:reversal:chargeback", 0),  # the chargeback's own key: nothing left to reverse
    ]
    assert rows(engine, """SELECT "creditsUsed" FROM "UsageHistory" WHERE "operationType" = 'CREDIT_REVERSAL'""") == [
        (CREDITS,)
    ]
    statuses = {status for _, status, _ in subscription_log(engine, clerk_id)}
    assert statuses == {"active", "refunded", "chargeback"}
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_refund_before_grant_leaves_no_net_credits(engine, worker, receiver_url, customer) -> None:
    user_id, clerk_id, plan_id = customer
    pay = payment_id()
    reference = f"{clerk_id}|plan:{plan_id}"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_REFUNDED", pay, external_reference=reference))
    settle(engine, 1)
    deliver_asaas(
        receiver_url,
        asaas_payment_event("PAYMENT_CONFIRMED", pay, external_reference=reference),
        asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference),
    )
    settle(engine, 3)

    assert balance(engine, user_id) == OPENING
    assert scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == 3
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_partial_refunds_reverse_proportionally_rounding_down(engine, worker, receiver_url, customer) -> None:
    user_id, clerk_id, plan_id = customer
    pay = payment_id()
    reference = f"{clerk_id}|plan:{plan_id}"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference, value=30))
    settle(engine, 1)
    first = [{"status": "DONE", "value": 10.0, "dateCreated": "2024-06-13 10:00:00"}]
    deliver_asaas(
        receiver_url,
        asaas_payment_event("PAYMENT_PARTIALLY_REFUNDED", pay, external_reference=reference, value=30, refunds=first),
    )
    settle(engine, 2)
    assert balance(engine, user_id) == OPENING + CREDITS - 166  # floor(500 × 10/30)

    second = [*first, {"status": "DONE", "value": 5.0}, {"status": "CANCELLED", "value": 15.0}]
    deliver_asaas(
        receiver_url,
        asaas_payment_event("PAYMENT_PARTIALLY_REFUNDED", pay, external_reference=reference, value=30, refunds=second),
    )
    settle(engine, 3)
    assert balance(engine, user_id) == OPENING + CREDITS - 250  # floor(500 × 15/30), cumulative

    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_REFUNDED", pay, external_reference=reference, value=30))
    settle(engine, 4)
    assert balance(engine, user_id) == OPENING  # a full refund removes the rest, rounding included
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_reversal_never_takes_the_balance_below_zero(engine, worker, receiver_url, customer) -> None:
    user_id, clerk_id, plan_id = customer
    pay = payment_id()
    reference = f"{clerk_id}|plan:{plan_id}"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference))
    settle(engine, 1)
    spent = OPENING + CREDITS - 100  # the web app spends most credits (its own ledger row)
    make_spend(engine, user_id, spent)
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_CHARGEBACK_REQUESTED", pay, external_reference=reference))
    settle(engine, 2)

    assert balance(engine, user_id) == 0
    (used, details) = rows(
        engine, """SELECT "creditsUsed", details FROM "UsageHistory" WHERE "operationType" = 'CREDIT_REVERSAL'"""
    )[0]
    assert used == 100
    assert (details["intended"], details["reversed"], details["shortfall"]) == (CREDITS, 100, CREDITS - 100)
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_unlinked_payment_is_set_aside_and_grants_once_after_the_link_is_fixed(
    engine, worker, receiver_url, customer, queue_name
) -> None:
    user_id, clerk_id, plan_id = customer
    pay, subscription = payment_id(), f"sub_{secrets.token_hex(6)}"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, subscription=subscription))
    settle(engine, 1)
    # No externalReference of ours: ignored by the default ASAAS_UNLINKED_PAYMENTS=ignore, with its reason.
    assert rows(engine, 'SELECT status, "lastError" FROM "WebhookEvent"') == [("ignored", "unlinked_payment")]
    assert balance(engine, user_id) == OPENING

    # The link is fixed: Asaas's SUBSCRIPTION_CREATED carries the externalReference the web app set.
    deliver_asaas(
        receiver_url,
        asaas_subscription_event("SUBSCRIPTION_CREATED", subscription, external_reference=f"{clerk_id}|plan:{plan_id}"),
    )
    settle(engine, 2)
    failed_id = scalar(engine, """SELECT id FROM "WebhookEvent" WHERE status = 'ignored'""")
    publisher = CeleryPublisher(REDIS_URL, queue_name)
    for _ in range(3):  # replay, more than once: the later ones find it processed (or still pending)
        replay_ids(engine, publisher, [failed_id])
    wait_for(lambda: scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == 2)
    wait_for(lambda: scalar(engine, 'SELECT count(*) FROM "CreditGrant"') == 1)

    assert grant_rows(engine, "asaas:") == [(f"asaas:payment:{pay}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert rows(engine, 'SELECT "userId", "planId" FROM "AsaasSubscriptionLink"') == [(user_id, plan_id)]
    assert sorted(subscription_log(engine, clerk_id)) == [
        ("PAYMENT_RECEIVED", "active", plan_id),
        ("SUBSCRIPTION_CREATED", "active", plan_id),
    ]
    assert_balance_matches_ledger(engine, user_id, OPENING)
