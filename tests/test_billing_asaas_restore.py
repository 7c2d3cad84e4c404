"""Asaas `PAYMENT_DELETED` / `PAYMENT_RESTORED` end to end (real receiver, PostgreSQL, Redis, worker).

A restore cancels one deletion: a deleted charge that is restored and then paid grants its credits once,
whatever order the deletion, the restore and the payment are processed in; a refund is never undone.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import ledger
from tests.support.asaas import asaas_payment_event, post_asaas
from tests.support.ledger import FINAL, assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user
from tests.support.processes import wait_for
from tests.support.servers import rows, scalar

OPENING = 40
CREDITS = 500


@pytest.fixture
def customer(engine: Engine) -> tuple[str, str]:
    """(User.id, externalReference) of a user with an opening balance and a 500-credit plan."""
    user_id, clerk_id = make_user(engine, OPENING)
    plan_id = make_plan(engine, CREDITS, asaasId=f"plan_{secrets.token_hex(4)}")
    return user_id, f"{clerk_id}|plan:{plan_id}"


def settled(engine: Engine) -> None:
    """Every stored event is final (each was stored before its 200 answer)."""
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status <> ALL(:s)', s=list(FINAL)) == 0,
        timeout=30,
        what="every event settled",
    )


_CLOCK = itertools.count()


def next_time() -> str:
    """Asaas stamps each event with the time it happened: steps sent one after another are a second apart."""
    return (dt.datetime(2026, 1, 5, 12, 0) + dt.timedelta(seconds=next(_CLOCK))).strftime("%Y-%m-%d %H:%M:%S")


def run(engine: Engine, url: str, reference: str, payment: str, *steps: str | dict) -> dict[str, dict]:
    """Deliver each step and wait until it is applied before the next; a step is an event type (a new event,
    a second after the previous one), or an event already delivered (sent again). Returns the first event of
    each type."""
    sent: dict[str, dict] = {}
    for step in steps:
        event = (
            step
            if isinstance(step, dict)
            else asaas_payment_event(step, payment, external_reference=reference, date_created=next_time())
        )
        sent.setdefault(event["event"], event)
        response = post_asaas(url, event)
        assert response.status_code == 200, response.text
        settled(engine)
    return sent


def statuses(engine: Engine, user_id: str) -> list[str]:
    return [status for (status,) in rows(
        engine, """SELECT status FROM "SubscriptionEvent" WHERE "userId" = :u ORDER BY "createdAt" """, u=user_id
    )]  # fmt: skip


def failed_events(engine: Engine) -> list[tuple]:
    return rows(engine, """SELECT "eventType", "lastError" FROM "WebhookEvent" WHERE status <> 'processed'""")


def test_deleted_then_restored_charge_grants_once_when_paid(engine, worker, receiver_url, customer) -> None:
    user_id, reference = customer
    pay = f"pay_{secrets.token_hex(6)}"
    sent = run(engine, receiver_url, reference, pay, "PAYMENT_DELETED", "PAYMENT_RESTORED")
    restored = sent["PAYMENT_RESTORED"]
    run(engine, receiver_url, reference, pay, restored, "PAYMENT_CONFIRMED")  # a redelivery, then the payment
    run(engine, receiver_url, reference, pay, "PAYMENT_RECEIVED")

    assert failed_events(engine) == []
    assert balance(engine, user_id) == OPENING + CREDITS
    keys = dict(grant_rows(engine, f"asaas:payment:{pay}"))
    assert keys == {
        f"asaas:payment:{pay}:reversal:deleted:{sent['PAYMENT_DELETED']['id']}": 0,
        f"asaas:payment:{pay}:lifted:{restored['id']}": 0,  # the deletion's tombstone, kept for the record
        f"asaas:payment:{pay}:reversal:restored:{restored['id']}": 0,
        f"asaas:payment:{pay}": CREDITS,
    }
    assert statuses(engine, user_id) == ["payment_deleted", "restored", "active", "active"]
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_restore_processed_before_its_deletion_still_lets_the_payment_grant(
    engine, worker, receiver_url, customer
) -> None:
    user_id, reference = customer
    pay = f"pay_{secrets.token_hex(6)}"
    deleted, restored = (  # the deletion happened first; its message is delivered last
        asaas_payment_event(kind, pay, external_reference=reference, date_created=next_time())
        for kind in ("PAYMENT_DELETED", "PAYMENT_RESTORED")
    )
    run(engine, receiver_url, reference, pay, restored, deleted, "PAYMENT_RECEIVED")

    assert failed_events(engine) == []
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_second_deletion_without_a_second_restore_blocks_the_grant(engine, worker, receiver_url, customer) -> None:
    user_id, reference = customer
    pay = f"pay_{secrets.token_hex(6)}"
    steps = ("PAYMENT_DELETED", "PAYMENT_RESTORED", "PAYMENT_DELETED", "PAYMENT_RECEIVED")
    run(engine, receiver_url, reference, pay, *steps)

    assert failed_events(engine) == []
    assert balance(engine, user_id) == OPENING
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_restore_never_lifts_a_refund(engine, worker, receiver_url, customer) -> None:
    user_id, reference = customer
    pay = f"pay_{secrets.token_hex(6)}"
    run(engine, receiver_url, reference, pay, "PAYMENT_REFUNDED", "PAYMENT_DELETED", "PAYMENT_RESTORED",
        "PAYMENT_CONFIRMED")  # fmt: skip

    assert failed_events(engine) == []
    assert balance(engine, user_id) == OPENING
    assert f"asaas:payment:{pay}" in dict(grant_rows(engine, f"asaas:payment:{pay}"))  # the refund's tombstone
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_restore_after_a_deletion_that_reversed_a_grant_gives_the_credits_back_once(
    engine, worker, receiver_url, customer
) -> None:
    user_id, reference = customer
    pay = f"pay_{secrets.token_hex(6)}"
    run(engine, receiver_url, reference, pay, "PAYMENT_RECEIVED", "PAYMENT_DELETED")
    assert balance(engine, user_id) == OPENING
    run(engine, receiver_url, reference, pay, "PAYMENT_RESTORED")
    assert balance(engine, user_id) == OPENING + CREDITS
    run(engine, receiver_url, reference, pay, "PAYMENT_REFUNDED")  # a later refund still reverses all of it

    assert failed_events(engine) == []
    assert balance(engine, user_id) == OPENING
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_restore_replayed_in_the_ledger_is_a_no_op(engine: Engine, customer) -> None:
    """The same restore applied twice (a replay) lifts once; the payment then grants once."""
    user_id, reference = customer
    clerk_id = reference.split("|")[0]
    key = f"asaas:payment:pay_{secrets.token_hex(6)}"
    fact = ledger.CreditFact(user_id, clerk_id)
    with Session(bind=engine) as session, session.begin():
        deleted = ledger.reverse_deletion_once(session, fact, grant_key=key, event_key="evt_del")
        first = ledger.restore_once(session, fact, grant_key=key, event_key="evt_res")
        again = ledger.restore_once(session, fact, grant_key=key, event_key="evt_res")
        granted = ledger.grant_once(session, fact, key=key, plan_id=None, amount=CREDITS)
        regrant = ledger.grant_once(session, fact, key=key, plan_id=None, amount=CREDITS)
    assert deleted.before_grant and first.lifted and not again.applied
    assert granted.applied and not regrant.applied
    assert balance(engine, user_id) == OPENING + CREDITS
