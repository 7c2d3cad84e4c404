"""Money facts that must trust only pedro-ingest's own records (real receiver, PostgreSQL, Redis, worker).

- A refund, partial refund or chargeback whose `externalReference` names another user reverses the
  grant's user; one that arrives before its grant is held against the charge and applied to the grant's
  user. Both arrival orders.
- A web-app deduction whose `details` carries a key of pedro-ingest's shape changes no restore.
Balance == ledger for every user after each case.
"""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import Engine, text

from tests.support.asaas import asaas_payment_event, post_asaas
from tests.support.ledger import FINAL, assert_balance_matches_ledger, balance, make_plan, make_user
from tests.support.processes import wait_for
from tests.support.servers import scalar

OPENING = 100
CREDITS = 500


def settled(engine: Engine) -> None:
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status <> ALL(:s)', s=list(FINAL)) == 0,
        timeout=30,
        what="every event settled",
    )


def deliver(engine: Engine, url: str, event: dict) -> None:
    assert post_asaas(url, event).status_code == 200
    settled(engine)


def failures(engine: Engine) -> int:
    return scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status NOT IN ('processed', 'ignored')""")


@pytest.fixture
def two_users(engine: Engine) -> tuple[tuple[str, str], tuple[str, str]]:
    """(User.id, externalReference) of the payer and of a bystander, on one 500-credit plan."""
    plan_id = make_plan(engine, CREDITS)
    users = []
    for _ in range(2):
        user_id, clerk_id = make_user(engine, OPENING)
        users.append((user_id, f"{clerk_id}|plan:{plan_id}"))
    return users[0], users[1]


def reversal(kind: str, pay: str, reference: str) -> dict:
    if kind == "partial":
        refunds = [{"status": "DONE", "value": 50}]
        return asaas_payment_event("PAYMENT_PARTIALLY_REFUNDED", pay, external_reference=reference, refunds=refunds)
    return asaas_payment_event(kind, pay, external_reference=reference)


@pytest.mark.parametrize(
    ("kind", "reversed_credits"),
    [("PAYMENT_REFUNDED", 500), ("PAYMENT_CHARGEBACK_REQUESTED", 500), ("partial", 250)],
)
@pytest.mark.parametrize("order", ["grant_first", "reversal_first"])
def test_a_reversal_naming_another_user_reverses_the_grants_user(
    engine: Engine, worker, receiver_url: str, two_users, kind: str, reversed_credits: int, order: str
) -> None:
    (payer, payer_ref), (bystander, bystander_ref) = two_users
    pay = f"pay_{secrets.token_hex(6)}"
    grant = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=payer_ref)
    hostile = reversal(kind, pay, bystander_ref)
    for event in [grant, hostile] if order == "grant_first" else [hostile, grant]:
        deliver(engine, receiver_url, event)

    assert failures(engine) == 0
    assert balance(engine, bystander) == OPENING  # named, but never paid: untouched
    if order == "reversal_first" and kind == "PAYMENT_REFUNDED":
        assert balance(engine, payer) == OPENING  # a full refund first: the payment grants nothing
    else:
        assert balance(engine, payer) == OPENING + CREDITS - reversed_credits
    for user in (payer, bystander):
        assert_balance_matches_ledger(engine, user, OPENING)


DEDUCT = text("SELECT ok FROM pedro_deduct_credits(:clerk, 50, 'AI_TEXT_CHAT', :key, CAST(:details AS jsonb))")


@pytest.mark.parametrize("deduction_at", ["before_deletion", "after_deletion"])
def test_a_deduction_with_crafted_details_changes_no_restore(
    engine: Engine, worker, receiver_url: str, two_users, deduction_at: str
) -> None:
    (payer, reference), _ = two_users
    clerk_id = reference.split("|")[0]
    pay = f"pay_{secrets.token_hex(6)}"
    deletion = asaas_payment_event("PAYMENT_DELETED", pay, external_reference=reference)
    crafted = {  # every key shape pedro-ingest writes, pointing at this payment's reversal and restore keys
        "reversalKey": f"asaas:payment:{pay}:reversal:deleted:{deletion['id']}",
        "restoreKey": f"asaas:payment:{pay}:reversal:restored:x",
        "grantKey": f"asaas:payment:{pay}",
        "kind": "plan_reversal",
    }

    def deduct() -> None:
        with engine.begin() as connection:
            ok = connection.execute(
                DEDUCT, {"clerk": clerk_id, "key": secrets.token_hex(8), "details": json.dumps(crafted)}
            ).scalar()
        assert ok

    deliver(engine, receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference))
    if deduction_at == "before_deletion":
        deduct()
    deliver(engine, receiver_url, deletion)
    if deduction_at == "after_deletion":
        deduct()
    deliver(engine, receiver_url, asaas_payment_event("PAYMENT_RESTORED", pay, external_reference=reference))

    assert failures(engine) == 0
    assert balance(engine, payer) == OPENING + CREDITS - 50  # the restore gave back 500, not 550
    assert_balance_matches_ledger(engine, payer, OPENING)


def test_a_deduction_with_crafted_details_changes_no_won_dispute(
    engine: Engine, worker, receiver_url: str, two_users
) -> None:
    (payer, reference), _ = two_users
    clerk_id = reference.split("|")[0]
    pay = f"pay_{secrets.token_hex(6)}"
    crafted = {"reversalKey": f"asaas:payment:{pay}:reversal:chargeback", "kind": "plan_reversal"}
    deliver(engine, receiver_url, asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=reference))
    deliver(
        engine, receiver_url, asaas_payment_event("PAYMENT_CHARGEBACK_REQUESTED", pay, external_reference=reference)
    )
    with engine.begin() as connection:
        assert connection.execute(
            DEDUCT, {"clerk": clerk_id, "key": secrets.token_hex(8), "details": json.dumps(crafted)}
        ).scalar()
    won = asaas_payment_event("PAYMENT_AWAITING_CHARGEBACK_REVERSAL", pay, external_reference=reference)
    deliver(engine, receiver_url, won)

    assert failures(engine) == 0
    assert balance(engine, payer) == OPENING + CREDITS - 50  # the dispute gave back 500, not 550
    assert_balance_matches_ledger(engine, payer, OPENING)
