"""Asaas subscription payments that also carry `installment` (as Asaas's own example does), end to end.

A payment that names a subscription is one period of it: each period grants once under its payment's key.
A grant recorded under the installment key before that rule is still reversed by its refund.
"""

from __future__ import annotations

import secrets

from sqlalchemy import text

from models.base import new_id
from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.ledger import assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user, settle

OPENING = 40
CREDITS = 500


def test_two_periods_of_a_subscription_carrying_installment_grant_twice(engine, worker, receiver_url) -> None:
    user_id, clerk_id = make_user(engine, OPENING)
    plan_id = make_plan(engine, CREDITS)
    subscription, installment = f"sub_{secrets.token_hex(5)}", f"{secrets.token_hex(8)}-inst"
    first, second = f"pay_{secrets.token_hex(6)}", f"pay_{secrets.token_hex(6)}"
    reference = f"{clerk_id}|plan:{plan_id}"
    events = [
        asaas_payment_event(kind, pay, external_reference=reference, subscription=subscription,
                            installment=installment, value=100)
        for pay in (first, second) for kind in ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED")
    ]  # fmt: skip
    deliver_asaas(receiver_url, *events, events[0])  # and one redelivery
    settle(engine, 4)

    assert sorted(grant_rows(engine, "asaas:")) == sorted(
        [(f"asaas:payment:{first}", CREDITS), (f"asaas:payment:{second}", CREDITS)]
    )
    assert balance(engine, user_id) == OPENING + 2 * CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_a_refund_finds_a_grant_recorded_under_the_old_installment_key(engine, worker, receiver_url) -> None:
    user_id, clerk_id = make_user(engine, OPENING)
    plan_id = make_plan(engine, CREDITS)
    subscription, installment = f"sub_{secrets.token_hex(5)}", f"{secrets.token_hex(8)}-inst"
    pay = f"pay_{secrets.token_hex(6)}"
    old_key = f"asaas:installment:{installment}"
    with engine.begin() as connection:  # what an earlier version granted for this period
        connection.execute(
            text("""INSERT INTO "CreditGrant" (id, "grantKey", "userId", "planId", amount, "createdAt")
                    VALUES (:id, :key, :user, :plan, :amount, now())"""),
            {"id": new_id(), "key": old_key, "user": user_id, "plan": plan_id, "amount": CREDITS},
        )
        connection.execute(
            text("""UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + :n WHERE "userId" = :u"""),
            {"n": CREDITS, "u": user_id},
        )
    refund = asaas_payment_event("PAYMENT_REFUNDED", pay, subscription=subscription, installment=installment,
                                 value=100)  # fmt: skip
    deliver_asaas(receiver_url, refund)
    settle(engine, 1)

    assert balance(engine, user_id) == OPENING
    assert grant_rows(engine, f"asaas:payment:{pay}") == []  # the new key was not claimed by the refund
    assert [key for key, _ in grant_rows(engine, old_key + ":reversal")] == [f"{old_key}:reversal:{pay}:refund"]
