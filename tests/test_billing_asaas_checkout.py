"""Asaas Checkout purchases end to end (real receiver, PostgreSQL, Redis, worker).

The reference is on the checkout (`CHECKOUT_CREATED` / `CHECKOUT_PAID`); the charge arrives with
`externalReference: null` and `checkoutSession`. Whichever arrives first, or alone, the plan is granted once
per checkout; a refund reverses it once; a recurrent checkout's charges grant one period each.
"""

from __future__ import annotations

import secrets
import subprocess

import pytest
from sqlalchemy import Engine

from tests.support.asaas import asaas_checkout_event, asaas_payment_event, deliver_asaas
from tests.support.ledger import FINAL, assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user
from tests.support.processes import cli_argv, wait_for
from tests.support.servers import rows, scalar

OPENING = 40
CREDITS = 500


@pytest.fixture
def buyer(engine: Engine) -> tuple[str, str]:
    """(User.id, the checkout's externalReference) of a user with an opening balance and a 500-credit plan."""
    user_id, clerk_id = make_user(engine, OPENING)
    return user_id, f"{clerk_id}|plan:{make_plan(engine, CREDITS)}"


def settled(engine: Engine) -> None:
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status <> ALL(:s)', s=list(FINAL)) == 0,
        timeout=30,
        what="every event settled",
    )


def send(engine: Engine, url: str, *events: dict) -> None:
    """Deliver each event and wait until it is applied before the next (the order under test)."""
    for event in events:
        deliver_asaas(url, event)
        settled(engine)


def outcomes(engine: Engine) -> dict[str, tuple[str, str | None]]:
    found = rows(engine, """SELECT "eventId", status, "lastError" FROM "WebhookEvent" """)
    return {event_id: (status, error) for event_id, status, error in found}


def new_ids() -> tuple[str, str]:
    return f"{secrets.token_hex(8)}-chk", f"pay_{secrets.token_hex(6)}"


def charge(event_type: str, pay: str, checkout: str, **extra) -> dict:
    """The checkout's charge as Asaas sends it: no reference, `checkoutSession` naming the checkout."""
    return asaas_payment_event(event_type, pay, external_reference=None, checkout_session=checkout, **extra)


def test_checkout_paid_alone_grants_once(engine, worker, receiver_url, buyer) -> None:
    user_id, reference = buyer
    checkout, _ = new_ids()
    paid = asaas_checkout_event("CHECKOUT_PAID", checkout, external_reference=reference)
    send(engine, receiver_url, paid, paid)

    assert grant_rows(engine, "asaas:") == [(f"asaas:checkout:{checkout}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert outcomes(engine)[paid["id"]] == ("processed", None)
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_created_then_the_charge_without_checkout_paid_grants_once(engine, worker, receiver_url, buyer) -> None:
    user_id, reference = buyer
    checkout, pay = new_ids()
    created = asaas_checkout_event("CHECKOUT_CREATED", checkout, external_reference=reference)
    confirmed, received = (charge(kind, pay, checkout) for kind in ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"))
    send(engine, receiver_url, created, confirmed, received, confirmed)

    assert grant_rows(engine, "asaas:") == [(f"asaas:checkout:{checkout}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    states = outcomes(engine)
    assert states[created["id"]] == ("ignored", "checkout_no_credits")
    assert states[confirmed["id"]] == states[received["id"]] == ("processed", None)
    assert_balance_matches_ledger(engine, user_id, OPENING)


ORDERS = {
    "paid-first": ("CHECKOUT_PAID", "PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"),
    "charge-first": ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED", "CHECKOUT_PAID"),
    "charge-before-created": ("PAYMENT_RECEIVED", "CHECKOUT_CREATED", "CHECKOUT_PAID"),
    "interleaved": ("CHECKOUT_CREATED", "PAYMENT_RECEIVED", "CHECKOUT_PAID", "PAYMENT_CONFIRMED"),
}


@pytest.mark.parametrize("order", list(ORDERS.values()), ids=list(ORDERS))
def test_checkout_paid_and_the_charge_in_any_order_and_redelivered_grant_once_and_a_refund_reverses_once(
    engine, worker, receiver_url, buyer, order
) -> None:
    user_id, reference = buyer
    checkout, pay = new_ids()
    events = [
        asaas_checkout_event(kind, checkout, external_reference=reference)
        if kind.startswith("CHECKOUT_")
        else charge(kind, pay, checkout)
        for kind in order
    ]
    send(engine, receiver_url, *events, *events)  # then Asaas redelivers every one of them

    assert grant_rows(engine, "asaas:") == [(f"asaas:checkout:{checkout}", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert {status for status, _ in outcomes(engine).values()} <= {"processed", "ignored"}
    pending = [error for _, error in outcomes(engine).values() if error == "checkout_pending"]
    assert pending == []  # a charge that waited for its checkout was applied and marked processed

    refund = charge("PAYMENT_REFUNDED", pay, checkout)
    send(engine, receiver_url, refund, refund, charge("PAYMENT_REFUNDED", pay, checkout))
    assert balance(engine, user_id) == OPENING
    assert grant_rows(engine, f"asaas:checkout:{checkout}:reversal") == [
        (f"asaas:checkout:{checkout}:reversal", -CREDITS)
    ]
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_a_charge_waits_for_its_checkout_and_checkout_created_applies_it(engine, worker, receiver_url, buyer) -> None:
    user_id, reference = buyer
    checkout, pay = new_ids()
    received = charge("PAYMENT_RECEIVED", pay, checkout)
    send(engine, receiver_url, received)
    assert outcomes(engine)[received["id"]] == ("ignored", "checkout_pending")
    assert balance(engine, user_id) == OPENING

    created = asaas_checkout_event("CHECKOUT_CREATED", checkout, external_reference=reference)
    send(engine, receiver_url, created)

    assert outcomes(engine)[received["id"]] == ("processed", None)
    assert outcomes(engine)[created["id"]] == ("processed", None)  # it applied a charge: not "no credits"
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_canceled_and_expired_only_log_and_a_checkout_of_another_product_is_ignored(
    engine, worker, receiver_url, buyer
) -> None:
    user_id, reference = buyer
    checkout, other = new_ids()[0], new_ids()[0]
    ours = [asaas_checkout_event(kind, checkout, external_reference=reference)
            for kind in ("CHECKOUT_CREATED", "CHECKOUT_CANCELED", "CHECKOUT_EXPIRED")]  # fmt: skip
    foreign = asaas_checkout_event("CHECKOUT_PAID", other, external_reference="order-4711")
    send(engine, receiver_url, *ours, foreign)

    states = outcomes(engine)
    assert [states[event["id"]] for event in ours] == [("ignored", "checkout_no_credits")] * 3
    assert states[foreign["id"]] == ("ignored", "unlinked_payment")
    assert balance(engine, user_id) == OPENING
    assert scalar(engine, 'SELECT count(*) FROM "CreditGrant"') == 0
    assert rows(engine, """SELECT status FROM "SubscriptionEvent" WHERE "userId" = :u ORDER BY "createdAt" """,
                u=user_id) == [("checkout_created",), ("checkout_canceled",), ("checkout_expired",)]  # fmt: skip


@pytest.mark.parametrize("paid_first", [True, False], ids=["paid-first", "charge-first"])
def test_a_recurrent_checkout_grants_each_period_once(engine, worker, receiver_url, buyer, paid_first) -> None:
    user_id, reference = buyer
    checkout, first = new_ids()
    second = f"pay_{secrets.token_hex(6)}"
    subscription = f"sub_{secrets.token_hex(6)}"
    created = asaas_checkout_event("CHECKOUT_CREATED", checkout, external_reference=reference, charge_type="RECURRENT")
    paid = asaas_checkout_event("CHECKOUT_PAID", checkout, external_reference=reference, charge_type="RECURRENT")
    period_one = charge("PAYMENT_RECEIVED", first, checkout, subscription=subscription)
    period_two = asaas_payment_event("PAYMENT_RECEIVED", second, subscription=subscription)  # names no checkout
    if paid_first:
        send(engine, receiver_url, created, paid, period_one, period_two)
    else:
        send(engine, receiver_url, period_one, paid, period_two)
    send(engine, receiver_url, paid, period_one)  # redelivered

    assert sorted(grant_rows(engine, "asaas:")) == sorted(
        [(f"asaas:payment:{first}", CREDITS), (f"asaas:payment:{second}", CREDITS)]
    )
    assert balance(engine, user_id) == OPENING + 2 * CREDITS
    assert {status for status, _ in outcomes(engine).values()} <= {"processed", "ignored"}
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_the_user_command_and_the_console_show_the_checkout_events_with_their_reasons(
    engine, worker, receiver_url, buyer, service_env
) -> None:
    from tests.test_console import console_app, signed_in

    user_id, reference = buyer
    clerk_id = reference.split("|")[0]
    checkout, pay = new_ids()
    send(
        engine,
        receiver_url,
        charge("PAYMENT_RECEIVED", pay, checkout),
        asaas_checkout_event("CHECKOUT_CREATED", checkout, external_reference=reference),
        asaas_checkout_event("CHECKOUT_EXPIRED", checkout, external_reference=reference),
        asaas_checkout_event("CHECKOUT_PAID", checkout, external_reference=reference),
    )
    result = subprocess.run(cli_argv("user", clerk_id), env=service_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for shown in ("PAYMENT_RECEIVED", "CHECKOUT_CREATED", "CHECKOUT_PAID", "CHECKOUT_EXPIRED",
                  "checkout_no_credits", f"asaas:checkout:{checkout}"):  # fmt: skip
        assert shown in result.stdout, (shown, result.stdout)

    for ref in (pay, checkout):  # a checkout's payment or the checkout itself finds its buyer
        found = subprocess.run(cli_argv("user", ref), env=service_env, capture_output=True, text=True, timeout=60)
        assert found.returncode == 0 and clerk_id in found.stdout, (ref, found.stdout, found.stderr)

    page = signed_in(console_app()).get(f"/console/users/{clerk_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "CHECKOUT_EXPIRED" in html and "CHECKOUT_PAID" in html and "moves no credits" in html


def test_a_chargeback_of_the_checkout_charge_reverses_the_checkout_grant_once(
    engine, worker, receiver_url, buyer
) -> None:
    user_id, reference = buyer
    checkout, pay = new_ids()
    send(engine, receiver_url, asaas_checkout_event("CHECKOUT_PAID", checkout, external_reference=reference))
    chargeback = charge("PAYMENT_CHARGEBACK_REQUESTED", pay, checkout)
    send(engine, receiver_url, chargeback, charge("PAYMENT_CHARGEBACK_REQUESTED", pay, checkout))

    assert balance(engine, user_id) == OPENING
    assert grant_rows(engine, f"asaas:checkout:{checkout}:reversal") == [
        (f"asaas:checkout:{checkout}:reversal:chargeback", -CREDITS)
    ]
    assert_balance_matches_ledger(engine, user_id, OPENING)
