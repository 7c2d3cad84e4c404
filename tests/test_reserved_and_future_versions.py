"""Internal event types and ids are unreachable from the wire, and a version from the future freezes no user.

- A wire `PAYMENT_SYNC`, or a wire event with a `payment-sync:` id, is answered 200 and stored `ignored`
  (`reserved_event`): it changes nothing, and the real backfill of that payment still applies, in either
  order (real receiver, worker, the Asaas API answered locally).
- A Clerk `updated_at` later than the event's receipt plus 5 minutes is `invalid_payload`; later updates
  apply. Migration 0008 frees users already frozen by such a version.
"""

from __future__ import annotations

import secrets

import pytest
from alembic import command
from sqlalchemy import Engine

from migrations.runner import alembic_config, migrate
from tests import test_payment_sync as payment_sync_tests
from tests.support.asaas import asaas_payment_event, post_asaas
from tests.support.clerk import clerk_user_event, deliver_clerk, now_ms
from tests.support.fake_asaas import asaas_api_payment
from tests.support.ledger import FINAL, assert_balance_matches_ledger, balance, event_status
from tests.support.processes import wait_for
from tests.support.servers import create_database, drop_database, rows, run_sql, scalar
from tests.test_payment_sync import CREDITS, OPENING

# The backfill's fixtures, shared with the backfill's own tests.
fake = payment_sync_tests.fake
redis_prefix = payment_sync_tests.redis_prefix
backfill = payment_sync_tests.backfill
customer = payment_sync_tests.customer

YEAR_9999_MS = 253_402_300_799_000


def settled(engine: Engine) -> None:
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status <> ALL(:s)', s=list(FINAL)) == 0,
        timeout=30,
        what="every event settled",
    )


def wire_events(pay: str, reference: str) -> list[dict]:
    """What a client holding the Asaas token could send to pass for the backfill."""
    as_type = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference)
    as_type["event"] = "PAYMENT_SYNC"
    as_id = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference)
    as_id["id"] = f"payment-sync:{pay}:RECEIVED"
    return [as_type, as_id]


@pytest.mark.parametrize("order", ["wire_first", "backfill_first"])
def test_wire_payment_sync_and_payment_sync_ids_are_ignored_and_the_backfill_still_applies(
    engine: Engine,
    worker,
    receiver_url: str,
    fake,
    backfill,
    customer,
    order: str,
) -> None:
    user_id, reference = customer
    pay = f"pay_{secrets.token_hex(6)}"
    fake.payments = [asaas_api_payment(pay, external_reference=reference)]

    def send_wire() -> None:
        for event in wire_events(pay, reference):
            assert post_asaas(receiver_url, event).status_code == 200
        settled(engine)

    if order == "wire_first":
        send_wire()
        assert balance(engine, user_id) == OPENING  # nothing applied
        assert_balance_matches_ledger(engine, user_id, OPENING)
    report = backfill.run()
    assert (report.status, report.stored, report.applied) == ("done", 1, 1)
    assert balance(engine, user_id) == OPENING + CREDITS
    if order == "backfill_first":
        send_wire()

    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)
    stored = rows(engine, """SELECT provider, "eventType", status, "lastError" FROM "WebhookEvent" ORDER BY provider""")
    assert sorted(stored) == [
        ("asaas", "PAYMENT_RECEIVED", "ignored", "reserved_event"),
        ("asaas", "PAYMENT_SYNC", "ignored", "reserved_event"),
        ("asaas-sync", "PAYMENT_SYNC", "processed", None),
    ]


def test_a_clerk_version_from_the_future_is_refused_and_later_updates_apply(
    engine: Engine, worker, receiver_url
) -> None:
    clerk_id = f"user_{secrets.token_hex(6)}"
    created = clerk_user_event("user.created", clerk_id=clerk_id, email="first@example.org")
    frozen = clerk_user_event("user.updated", clerk_id=clerk_id, email="future@example.org", updated_at=YEAR_9999_MS)
    later = clerk_user_event("user.updated", clerk_id=clerk_id, email="later@example.org", updated_at=now_ms() + 1000)
    deliver_clerk(receiver_url, created)
    settled(engine)
    deliver_clerk(receiver_url, frozen)
    settled(engine)
    status, error, detail = event_status(engine, _svix_id(engine, frozen))
    assert (status, error) == ("failed", "invalid_payload") and "5 minutes" in (detail or "")
    deliver_clerk(receiver_url, later)
    settled(engine)
    assert scalar(engine, 'SELECT email FROM "User" WHERE "clerkId" = :c', c=clerk_id) == "later@example.org"
    assert scalar(engine, """SELECT version FROM "EntityVersion" WHERE "entityId" = :c""", c=clerk_id) < YEAR_9999_MS


def _svix_id(engine: Engine, event: dict) -> str:
    """The inbox's event id of a Clerk event (its svix-id), found by the payload's updated_at."""
    return scalar(
        engine,
        """SELECT "eventId" FROM "WebhookEvent" WHERE (payload->'data'->>'updated_at')::bigint = :u""",
        u=event["data"]["updated_at"],
    )


def test_migration_0008_frees_users_frozen_by_a_future_version_and_moves_backfill_rows() -> None:
    name, url = create_database()
    try:
        command.upgrade(alembic_config(url), "0007")
        soon, far = now_ms() + 60_000, YEAR_9999_MS
        run_sql(
            url,
            """INSERT INTO "EntityVersion" ("entityType", "entityId", version, deleted, "updatedAt") VALUES
               ('clerk_user', 'frozen', %(far)s, false, now()), ('clerk_user', 'gone', %(far)s, true, now()),
               ('clerk_user', 'fine', %(soon)s, false, now());
               INSERT INTO "WebhookEvent" (id, provider, "eventId", "eventType", "receivedAt", status, "updatedAt")
               VALUES ('r1', 'asaas', 'payment-sync:pay_1:RECEIVED', 'PAYMENT_SYNC', now(), 'processed', now()),
                      ('r2', 'asaas', 'evt_1', 'PAYMENT_RECEIVED', now(), 'processed', now())""",
            {"far": far, "soon": soon},
        )
        migrate(url)
        versions = dict(run_sql(url, """SELECT "entityId", version FROM "EntityVersion" """))
        assert versions["frozen"] == 0  # the next update applies
        assert now_ms() - 600_000 < versions["gone"] <= now_ms()  # a deletion stays terminal
        assert versions["fine"] == soon  # within a day: left alone
        providers = dict(run_sql(url, """SELECT id, provider FROM "WebhookEvent" """))
        assert providers == {"r1": "asaas-sync", "r2": "asaas"}
    finally:
        drop_database(name)


def test_a_deletion_from_the_future_still_deletes_but_stores_no_future_version(
    engine: Engine, worker, receiver_url
) -> None:
    clerk_id = f"user_{secrets.token_hex(6)}"
    deliver_clerk(receiver_url, clerk_user_event("user.created", clerk_id=clerk_id))
    settled(engine)
    deliver_clerk(receiver_url, clerk_user_event("user.deleted", clerk_id=clerk_id, updated_at=YEAR_9999_MS))
    settled(engine)
    assert scalar(engine, 'SELECT "isActive" FROM "User" WHERE "clerkId" = :c', c=clerk_id) is False
    stored = scalar(engine, """SELECT version FROM "EntityVersion" WHERE "entityId" = :c""", c=clerk_id)
    assert stored <= now_ms() + 5 * 60_000  # a deletion is terminal; its version is held to the bound
