"""A charge deleted by a webhook and seen deleted by the payment backfill, then restored once, end to end.

Its state follows its newest fact by provider time (the webhook's `dateCreated`, the backfill's API read),
not the number of messages: the grant is back, once, whatever order the three facts are processed in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine

from ingest.formats.dates import BRASILIA
from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.fake_asaas import FakeAsaas, asaas_api_payment
from tests.support.ledger import FINAL, assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user
from tests.support.processes import wait_for
from tests.support.servers import REDIS_URL, rows, scalar
from tests.test_payment_sync import SINCE, Backfill

OPENING = 40
CREDITS = 500
FACTS = ("webhook_deleted", "backfill_deleted", "webhook_restored")


@pytest.fixture
def backfill(engine: Engine) -> Iterator[tuple[FakeAsaas, Backfill]]:
    prefix = f"pedro-test:asaas:{secrets.token_hex(4)}"
    with FakeAsaas() as fake:
        yield fake, Backfill(fake, prefix, engine)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def settled(engine: Engine) -> None:
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status <> ALL(:s)', s=list(FINAL)) == 0,
        timeout=30,
        what="every event settled",
    )


def sao_paulo(moment: dt.datetime) -> str:
    """Asaas's `dateCreated`: naive São Paulo time."""
    return moment.astimezone(BRASILIA).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("order", list(itertools.permutations(FACTS)), ids="-".join)
def test_deleted_by_webhook_and_backfill_then_restored_once_gives_the_grant_back_once(
    engine, worker, receiver_url, backfill, order
) -> None:
    fake, run_backfill = backfill
    user_id, clerk_id = make_user(engine, OPENING)
    reference = f"{clerk_id}|plan:{make_plan(engine, CREDITS)}"
    pay = f"pay_{secrets.token_hex(6)}"
    now = dt.datetime.now(dt.UTC)
    # In Asaas's time: deleted an hour ago, the backfill reads it deleted now, restored an hour from now.
    webhook = {
        "webhook_deleted": asaas_payment_event(
            "PAYMENT_DELETED", pay, external_reference=reference, date_created=sao_paulo(now - dt.timedelta(hours=1))
        ),
        "webhook_restored": asaas_payment_event(
            "PAYMENT_RESTORED", pay, external_reference=reference, date_created=sao_paulo(now + dt.timedelta(hours=1))
        ),
    }
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference))
    settled(engine)
    assert balance(engine, user_id) == OPENING + CREDITS

    for fact in order:
        if fact == "backfill_deleted":
            fake.payments = [asaas_api_payment(pay, external_reference=reference, deleted=True)]
            assert run_backfill.run(SINCE).applied == 1
        else:
            deliver_asaas(receiver_url, webhook[fact])
            settled(engine)

    assert rows(engine, """SELECT "eventType", status FROM "WebhookEvent" WHERE status <> 'processed'""") == []
    assert balance(engine, user_id) == OPENING + CREDITS
    keys = dict(grant_rows(engine, f"asaas:payment:{pay}"))
    assert len([key for key in keys if ":deleted:" in key]) == 2 and len([k for k in keys if ":restored:" in k]) == 1
    assert_balance_matches_ledger(engine, user_id, OPENING)
    # Given back at most once: the restores' ledger rows add back exactly what the deletions removed.
    restored = scalar(engine, """SELECT COALESCE(sum(-"creditsUsed"), 0) FROM "UsageHistory"
                                 WHERE "userId" = :u AND details ? 'restoreKey'""", u=user_id)  # fmt: skip
    removed = scalar(engine, """SELECT COALESCE(sum("creditsUsed"), 0) FROM "UsageHistory" WHERE "userId" = :u
                                AND details->>'reversalKey' LIKE '%:deleted:%'""", u=user_id)  # fmt: skip
    assert restored == removed and restored in (0, CREDITS)
