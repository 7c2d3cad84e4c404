"""Clerk and Asaas deliveries as the providers really send them: Clerk's timestamps in seconds, free trials,
Asaas events without an `id`, payments of other products, and replay by the ids an operator has in hand.

Real receiver, worker, PostgreSQL and Redis; policy variants run the same processing code in-process.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets

import pytest
from sqlalchemy import Engine, text

from ingest.broker.publisher import CeleryPublisher
from ingest.broker.replay import replay_ids
from ingest.config.settings import load_settings
from tests.support.asaas import asaas_payment_event, deliver_asaas, post_asaas
from tests.support.clerk import clerk_item_event, clerk_user_event, deliver_clerk
from tests.support.fixtures import FIXTURES
from tests.support.inbox import store_event
from tests.support.ledger import (
    assert_balance_matches_ledger,
    assert_no_drift,
    balance,
    event_status,
    grant_rows,
    make_plan,
    make_user,
    settle,
)
from tests.support.processes import wait_for
from tests.support.servers import REDIS_URL, rows
from workers.jobs.expire_credits import expire_credits
from workers.processing.apply import process_event

OFFICIAL = FIXTURES / "official"
OPENING = 10
CREDITS = 2000
P1 = 1_751_000_000_000


def official(name: str) -> dict:
    return json.loads((OFFICIAL / name).read_text())


@pytest.mark.parametrize("deleted_first", [False, True], ids=["created_first", "deleted_first"])
def test_official_user_deleted_in_seconds_deactivates_and_erases_the_user(
    engine, worker, receiver_url, deleted_first
) -> None:
    created, deleted = official("clerk/official_user_created.json"), official("clerk/official_user_deleted.json")
    created["data"]["email_addresses"] = [{"id": created["data"]["primary_email_address_id"],
                                           "email_address": "john@example.org"}]  # fmt: skip
    for count, event in enumerate((deleted, created) if deleted_first else (created, deleted), start=1):
        deliver_clerk(receiver_url, event)
        settle(engine, count)
    user = rows(engine, """SELECT "isActive", email, name FROM "User" WHERE "clerkId" = :c""", c=created["data"]["id"])
    assert user in ([(False, None, None)], [])  # deleted first: the tombstone keeps the create from applying
    years = rows(engine, """SELECT DISTINCT extract(year FROM "occurredAt")::int FROM "WebhookEvent" """)
    assert years == [(2024,)]  # 1716883200 is seconds: May 2024, not January 1970


def test_live_milliseconds_and_example_seconds_order_the_same_user(engine, worker, receiver_url) -> None:
    """A live update (ms) after an example-style deletion (s) of the same moment does not resurrect it."""
    clerk_id = f"user_{secrets.token_hex(6)}"
    deliver_clerk(receiver_url, clerk_user_event("user.created", clerk_id=clerk_id, updated_at=1_716_000_000_000))
    settle(engine, 1)
    deleted = clerk_user_event("user.deleted", clerk_id=clerk_id)
    deleted["timestamp"] = 1_716_883_200  # seconds
    stale = clerk_user_event("user.updated", clerk_id=clerk_id, updated_at=1_716_800_000_000, email="x@example.org")
    deliver_clerk(receiver_url, deleted)
    settle(engine, 2)
    deliver_clerk(receiver_url, stale)
    settle(engine, 3)
    assert rows(engine, """SELECT "isActive", email FROM "User" WHERE "clerkId" = :c""", c=clerk_id) == [(False, None)]


def test_clerk_values_beyond_their_columns_fail_at_once_naming_the_field(engine, worker, receiver_url) -> None:
    too_long = clerk_user_event(email="a" * 3000 + "@example.org")
    far_future = clerk_user_event()
    far_future["data"]["updated_at"] = 10**20
    deliver_clerk(receiver_url, too_long, far_future)
    settle(engine, 2)
    for event, field in ((too_long, "email_address"), (far_future, "updated_at")):
        (status, code, detail, attempts), = rows(
            engine, """SELECT status, "lastError", "lastErrorDetail", attempts FROM "WebhookEvent"
                       WHERE payload -> 'data' ->> 'id' = :c""", c=event["data"]["id"],
        )  # fmt: skip
        assert (status, code, attempts) == ("failed", "invalid_payload", 1)
        assert field in detail


@pytest.fixture
def subscriber(engine: Engine) -> tuple[str, str, str]:
    user_id, clerk_id = make_user(engine, OPENING)
    clerk_plan = f"cplan_{secrets.token_hex(4)}"
    make_plan(engine, CREDITS, clerkId=clerk_plan, clerkName="pro")
    return user_id, clerk_id, clerk_plan


def trial_events(clerk_id: str, clerk_plan: str, item: str) -> list[dict]:
    events = []
    for event_type in ("subscriptionItem.active", "subscriptionItem.freeTrialEnding"):
        event = clerk_item_event(event_type, item, clerk_id, period_start=P1, plan_id=clerk_plan)
        event["data"]["is_free_trial"] = True
        events.append(event)
    return events


def test_a_free_trial_grants_nothing_and_the_first_paid_period_grants_once(
    engine, worker, receiver_url, subscriber
) -> None:
    user_id, clerk_id, clerk_plan = subscriber
    item = f"csub_item_{secrets.token_hex(4)}"
    deliver_clerk(receiver_url, *trial_events(clerk_id, clerk_plan, item))
    settle(engine, 2)
    assert balance(engine, user_id) == OPENING and grant_rows(engine, "clerk:") == []
    paid = clerk_item_event("subscriptionItem.active", item, clerk_id, period_start=P1 + 14 * 86_400_000,
                            plan_id=clerk_plan)  # fmt: skip
    deliver_clerk(receiver_url, paid)
    settle(engine, 3)
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)
    assert_no_drift(engine, clerk_id)


def test_trial_credits_setting_grants_its_amount_once_per_item(engine, subscriber) -> None:
    user_id, clerk_id, clerk_plan = subscriber
    settings = load_settings(clerk_trial_credits=50)
    for event in trial_events(clerk_id, clerk_plan, f"csub_item_{secrets.token_hex(4)}") * 2:
        event = copy.deepcopy(event)
        row_id = store_event(engine, event, provider="clerk", event_type=event["type"])
        assert process_event(row_id, engine=engine, settings=settings).status == "processed"
    assert balance(engine, user_id) == OPENING + 50
    assert_balance_matches_ledger(engine, user_id, OPENING)
    assert_no_drift(engine, clerk_id)


def test_trial_credits_expire_with_the_trial_period_when_the_payload_gives_it_else_never(engine, subscriber) -> None:
    user_id, clerk_id, clerk_plan = subscriber
    settings = load_settings(clerk_trial_credits=50)
    start = 4_070_908_800_000  # 2099-01-01 UTC, in milliseconds
    dated, undated = f"csub_item_{secrets.token_hex(4)}", f"csub_item_{secrets.token_hex(4)}"
    for item, period_end in ((dated, start + 14 * 86_400_000), (undated, None)):
        event = trial_events(clerk_id, clerk_plan, item)[0]
        event["data"].update(period_start=start, period_end=period_end)
        row_id = store_event(engine, event, provider="clerk", event_type=event["type"])
        assert process_event(row_id, engine=engine, settings=settings).status == "processed"

    trial_lots = rows(engine, """SELECT "grantKey", "expiresAt" FROM "CreditLot" WHERE category = 'trial'
                                 AND "userId" = :u ORDER BY "expiresAt" NULLS LAST""", u=user_id)  # fmt: skip
    assert trial_lots == [(f"clerk:trial:{dated}", dt.datetime(2099, 1, 15)), (f"clerk:trial:{undated}", None)]
    report = expire_credits(engine=engine, now=dt.datetime(2099, 1, 15), publish=False)
    assert (report.lots, report.credits) == (1, 50)
    assert balance(engine, user_id) == OPENING + 50
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_asaas_events_without_id_of_unhandled_types_are_ignored(engine, worker, receiver_url) -> None:
    for name in ("docs_bill_paid_noid.json", "docs_invoice_created_en_noid.json"):
        deliver_asaas(receiver_url, official(f"asaas/{name}"))
    settle(engine, 2)
    assert rows(engine, """SELECT DISTINCT status FROM "WebhookEvent" """) == [("ignored",)]
    assert post_asaas(receiver_url, official("asaas/docs_bill_paid_noid.json")).json() == {"status": "duplicate"}


def test_payments_of_other_products_are_ignored_ours_unlinked_fail_and_replay_once_linked(
    engine, worker, receiver_url, queue_name
) -> None:
    user_id, clerk_id = make_user(engine, OPENING)
    plan_id = make_plan(engine, CREDITS, asaasId=f"plan_{secrets.token_hex(4)}")
    foreign = asaas_payment_event("PAYMENT_RECEIVED", f"pay_{secrets.token_hex(5)}", external_reference="056984")
    ours = asaas_payment_event("PAYMENT_RECEIVED", f"pay_{secrets.token_hex(5)}", external_reference="user_not_synced")
    deliver_asaas(receiver_url, foreign, ours)
    settle(engine, 2)
    assert event_status(engine, foreign["id"])[:2] == ("ignored", "unlinked_payment")  # default policy: ignore
    assert event_status(engine, ours["id"])[:2] == ("failed", "unlinked_payment")

    strict = asaas_payment_event("PAYMENT_RECEIVED", f"pay_{secrets.token_hex(5)}", external_reference=None)
    row_id = store_event(engine, strict, provider="asaas", event_id=strict["id"], event_type="PAYMENT_RECEIVED")
    outcome = process_event(row_id, engine=engine, settings=load_settings(asaas_unlinked_payments="fail"))
    assert outcome.status == "failed"

    with engine.begin() as connection:  # the link is fixed: the ignored payment was ours after all
        connection.execute(
            text("""UPDATE "WebhookEvent" SET payload = jsonb_set(payload, '{payment,externalReference}', :r)
                    WHERE "eventId" = :e"""),
            {"r": json.dumps(f"{clerk_id}|plan:{plan_id}"), "e": foreign["id"]},
        )
    result = replay_ids(engine, CeleryPublisher(REDIS_URL, queue=queue_name), [foreign["payment"]["id"]])
    assert len(result.enqueued) == 1 and result.missing == []
    wait_for(lambda: event_status(engine, foreign["id"])[0] == "processed", timeout=30, what="replayed")
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)
    assert_no_drift(engine, clerk_id)


def test_replay_accepts_provider_event_ids_and_payment_ids(engine, worker, receiver_url, queue_name) -> None:
    user_id, clerk_id = make_user(engine, OPENING)
    plan_id = make_plan(engine, CREDITS, asaasId=f"plan_{secrets.token_hex(4)}")
    pay = f"pay_{secrets.token_hex(5)}"
    subscription = f"sub_{secrets.token_hex(5)}"
    payment = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=clerk_id, subscription=subscription)
    deliver_asaas(receiver_url, payment)
    settle(engine, 1)
    assert event_status(engine, payment["id"])[:2] == ("failed", "unlinked_plan")
    with engine.begin() as connection:
        connection.execute(text("""UPDATE "Plan" SET "asaasId" = :s WHERE id = :p"""),
                           {"s": subscription, "p": plan_id})  # fmt: skip
    publisher = CeleryPublisher(REDIS_URL, queue=queue_name)
    assert replay_ids(engine, publisher, ["evt_nonexistent"]).missing == ["evt_nonexistent"]
    result = replay_ids(engine, publisher, [payment["id"]])
    assert len(result.enqueued) == 1
    wait_for(lambda: event_status(engine, payment["id"])[0] == "processed", timeout=30, what="replayed")
    assert balance(engine, user_id) == OPENING + CREDITS
    assert replay_ids(engine, publisher, [pay]).already_final  # by payment id: already processed, nothing to do
    assert_no_drift(engine, clerk_id)


def test_database_errors_no_retry_can_fix_are_permanent(engine) -> None:
    """A value PostgreSQL refuses (data exception, an index row over its size limit) fails the same way on every
    retry: it is permanent, while a lost connection stays transient."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from workers.processing.errors import is_transient, never_succeeds

    refused = []
    with engine.connect() as connection:
        for statement in (
            "SELECT 'not a number'::int",
            "SELECT '10000000000000000000000'::bigint",
            "CREATE TEMP TABLE wide (v text PRIMARY KEY); INSERT INTO wide SELECT string_agg(md5(i::text), '') "
            "FROM generate_series(1, 300) i",
        ):
            try:
                with connection.begin():
                    connection.exec_driver_sql(statement)
            except DBAPIError as error:
                refused.append(error)
    assert len(refused) == 3 and all(never_succeeds(error) and not is_transient(error) for error in refused)
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert is_transient(lost) and not never_succeeds(lost)
