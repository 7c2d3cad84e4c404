"""Asaas billing against the payloads Asaas really sends: partial refunds before their payment, card
installments, won chargebacks, absurd values, reversals that carry only `payment.id`.

Real receiver, worker, PostgreSQL and Redis. After every scenario: balance == opening + ledger sum, and
reconciliation finds no drift.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import Engine

from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.ledger import (
    assert_balance_matches_ledger,
    assert_no_drift,
    balance,
    event_status,
    make_plan,
    make_user,
    settle,
)
from tests.support.servers import rows, scalar

OPENING = 40
CREDITS = 2000


@pytest.fixture
def customer(engine: Engine) -> tuple[str, str, str]:
    """(User.id, clerkId, externalReference naming the user and a 2,000-credit plan)."""
    user_id, clerk_id = make_user(engine, OPENING)
    plan_id = make_plan(engine, CREDITS, asaasId=f"plan_{secrets.token_hex(4)}")
    return user_id, clerk_id, f"{clerk_id}|plan:{plan_id}"


def pay_id() -> str:
    return f"pay_{secrets.token_hex(6)}"


def send(engine: Engine, url: str, *events: dict) -> None:
    """Deliver one by one, each processed before the next (the order is the test's subject)."""
    for event in events:
        before = len(_final(engine))
        deliver_asaas(url, event)
        settle(engine, before + 1)


def _final(engine: Engine) -> list:
    return rows(engine, """SELECT id FROM "WebhookEvent" WHERE status IN ('processed','ignored','failed','dead')""")


def assert_consistent(engine: Engine, user_id: str, clerk_id: str) -> None:
    assert_balance_matches_ledger(engine, user_id, OPENING)
    assert_no_drift(engine, clerk_id)


@pytest.mark.parametrize("refund_first", [True, False], ids=["refund_first", "payment_first"])
def test_partial_refund_reverses_exactly_its_share_in_either_order(
    engine, worker, receiver_url, customer, refund_first
) -> None:
    user_id, clerk_id, reference = customer
    pay = pay_id()
    received = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference, value=100)
    refund = asaas_payment_event(
        "PAYMENT_PARTIALLY_REFUNDED", pay, external_reference=reference, value=100,
        refunds=[{"status": "DONE", "value": 25}],
    )  # fmt: skip
    send(engine, receiver_url, *((refund, received) if refund_first else (received, refund)))
    assert balance(engine, user_id) == OPENING + CREDITS * 3 // 4
    assert_consistent(engine, user_id, clerk_id)


@pytest.mark.parametrize(
    "order",
    [("C1", "C2", "R2"), ("C2", "C1", "R2"), ("R2", "C2", "C1"), ("C2", "R2", "C1")],
)
def test_installments_grant_once_and_a_refunded_installment_reverses_its_share(
    engine, worker, receiver_url, customer, fake_asaas, order
) -> None:
    user_id, clerk_id, reference = customer
    installment = f"inst-{secrets.token_hex(8)}"
    fake_asaas.installments[installment] = 100.0
    payments = {1: pay_id(), 2: pay_id()}

    def event(kind: str, number: int) -> dict:
        return asaas_payment_event(
            kind, payments[number], external_reference=reference, value=50,
            installment=installment, installment_number=number,
        )  # fmt: skip

    events = {
        "C1": event("PAYMENT_CONFIRMED", 1),
        "C2": event("PAYMENT_CONFIRMED", 2),
        "R2": event("PAYMENT_REFUNDED", 2),
    }
    send(engine, receiver_url, *(events[name] for name in order))
    assert balance(engine, user_id) == OPENING + CREDITS // 2
    assert_consistent(engine, user_id, clerk_id)

    send(engine, receiver_url, event("PAYMENT_CHARGEBACK_REQUESTED", 1))
    assert balance(engine, user_id) == OPENING
    assert_consistent(engine, user_id, clerk_id)


def test_installments_without_the_api_use_the_sum_of_installments_seen(engine, worker, receiver_url, customer) -> None:
    user_id, clerk_id, reference = customer
    installment = f"unknown-{secrets.token_hex(8)}"  # the fake Asaas API answers 404
    events = [
        asaas_payment_event(kind, pay, external_reference=reference, value=value, installment=installment)
        for kind, pay, value in (("PAYMENT_CONFIRMED", "pay_a" + secrets.token_hex(3), 30),)
    ]
    second = "pay_b" + secrets.token_hex(3)
    events.append(asaas_payment_event("PAYMENT_CONFIRMED", second, external_reference=reference, value=70,
                                      installment=installment))  # fmt: skip
    events.append(asaas_payment_event("PAYMENT_REFUNDED", second, external_reference=reference, value=70,
                                      installment=installment))  # fmt: skip
    send(engine, receiver_url, *events)
    assert balance(engine, user_id) == OPENING + CREDITS - CREDITS * 7 // 10
    assert_consistent(engine, user_id, clerk_id)


WON = "PAYMENT_AWAITING_CHARGEBACK_REVERSAL"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (("PAYMENT_RECEIVED", "PAYMENT_CHARGEBACK_REQUESTED", "PAYMENT_CHARGEBACK_DISPUTE", WON), CREDITS),
        (("PAYMENT_RECEIVED", WON, "PAYMENT_CHARGEBACK_REQUESTED"), CREDITS),
        (("PAYMENT_CHARGEBACK_REQUESTED", WON, "PAYMENT_RECEIVED"), CREDITS),
        (("PAYMENT_RECEIVED", "PAYMENT_CHARGEBACK_REQUESTED", WON, "RECEIVED_AGAIN"), CREDITS),
        (("PAYMENT_RECEIVED", "PAYMENT_CHARGEBACK_REQUESTED", "PAYMENT_REFUNDED", WON), 0),
        (("PAYMENT_RECEIVED", "PAYMENT_CHARGEBACK_REQUESTED", WON, "PAYMENT_REFUNDED"), 0),
    ],
    ids=["won", "won_before_chargeback", "chargeback_before_grant", "received_again", "refunded", "refund_after_won"],
)
def test_won_chargeback_gives_the_credits_back_once_and_a_refund_is_never_undone(
    engine, worker, receiver_url, customer, order, expected
) -> None:
    user_id, clerk_id, reference = customer
    pay = pay_id()

    def event(kind: str) -> dict:
        if kind == "RECEIVED_AGAIN":
            return asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference,
                                       chargeback={"status": "REVERSED", "reason": "PROCESS_ERROR"})  # fmt: skip
        return asaas_payment_event(kind, pay, external_reference=reference)

    send(engine, receiver_url, *(event(kind) for kind in order))
    assert balance(engine, user_id) == OPENING + expected
    assert_consistent(engine, user_id, clerk_id)


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("PAYMENT_RECEIVED", "value", -100),
        ("PAYMENT_RECEIVED", "value", 0),
        ("PAYMENT_RECEIVED", "value", 1e308),
        ("PAYMENT_RECEIVED", "value", "1e999999999"),
        ("PAYMENT_PARTIALLY_REFUNDED", "refunds", "1e-10000000"),
        ("PAYMENT_RECEIVED", "id", "p" * 3000),
    ],
)
def test_absurd_values_fail_at_once_naming_the_field(
    engine, worker, receiver_url, customer, event_type, field, value
) -> None:
    user_id, clerk_id, reference = customer
    event = asaas_payment_event(event_type, pay_id(), external_reference=reference)
    if field == "refunds":
        event["payment"]["refunds"] = [{"status": "DONE", "value": value}]
    else:
        event["payment"][field] = value
    send(engine, receiver_url, event)
    status, code, detail = event_status(engine, event["id"])
    assert (status, code) == ("failed", "invalid_payload"), detail
    assert f"payment.{field}" in detail
    assert scalar(engine, 'SELECT attempts FROM "WebhookEvent" WHERE "eventId" = :e', e=event["id"]) == 1
    assert balance(engine, user_id) == OPENING
    assert_consistent(engine, user_id, clerk_id)


@pytest.mark.parametrize("kind", ["PAYMENT_REFUNDED", "PAYMENT_CHARGEBACK_REQUESTED", "PAYMENT_PARTIALLY_REFUNDED"])
def test_reversals_carrying_only_the_payment_id_find_the_user_through_the_grant(
    engine, worker, receiver_url, customer, kind
) -> None:
    user_id, clerk_id, reference = customer
    pay = pay_id()
    bare = asaas_payment_event(kind, pay, refunds=[{"status": "DONE", "value": 100}])
    bare["payment"]["customer"] = None
    send(engine, receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference), bare)
    assert event_status(engine, bare["id"])[0] == "processed"
    assert balance(engine, user_id) == OPENING
    assert_consistent(engine, user_id, clerk_id)
