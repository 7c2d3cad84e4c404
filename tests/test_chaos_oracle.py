"""The chaos run's payment oracle must pass on a correct database and catch a double grant, a missing
grant, a lost reversal or give-back and a lost log row (a check that cannot fail proves nothing)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import psycopg2
import pytest
from sqlalchemy import Engine, text

from bench.chaos_payments import KINDS, AsaasPayments
from ingest.config.settings import load_settings
from tests.support.fake_asaas import API_KEY
from tests.support.inbox import store_event
from workers.processing.apply import process_event


@pytest.fixture
def applied(
    engine: Engine, database: str, fake_asaas
) -> Iterator[tuple[AsaasPayments, set[str], psycopg2.extensions.cursor]]:
    """Purchases generated, seeded and applied by the real handlers; the reversal-first ones really first."""
    rng = random.Random(7)
    payments = AsaasPayments(payers=4, refund_share=0.5, refund_first_share=0.5)
    bodies = {event_id: (body, provider) for event_id, body, provider in payments.generate(120, rng)}
    assert {p.kind for p in payments.purchases.values()} == set(KINDS)
    fake_asaas.installments.update(payments.installment_totals)
    settings = load_settings(asaas_api_url=fake_asaas.url, asaas_api_key=API_KEY)
    with contextlib.closing(psycopg2.connect(database)) as connection:
        with connection:
            payments.seed(connection)
        held = payments.held_back()
        order = [event_id for event_id in bodies if event_id not in held]
        rng.shuffle(order)
        row_ids = []
        for event_id in [*order, *held]:
            body, provider = bodies[event_id]
            event = payments.events[event_id]
            row_ids.append(store_event(engine, body, provider=provider, event_id=event_id,
                                       event_type=event.get("event") or event["type"]))  # fmt: skip
        for row_id in row_ids:
            assert process_event(row_id, engine=engine, settings=settings).status == "processed"
        with connection.cursor() as cursor:
            yield payments, set(bodies), cursor


def _pick(payments: AsaasPayments, kind: str, *roles: str):
    return next(p for p in payments.purchases.values() if p.kind == kind and set(roles) <= set(p.roles.values()))


def test_the_oracle_agrees_with_a_correct_run_of_every_purchase_kind(applied) -> None:
    payments, accepted, cursor = applied
    double, mismatches, examples, figures = payments.check(cursor, accepted)
    assert (double, mismatches, examples) == (0, 0, [])
    assert figures["refunds_before_grant"] >= sum(bool(p.first) for p in payments.purchases.values()) > 0
    expected = sum(payments.net_credits(p, set(p.roles.values())) for p in payments.purchases.values())
    assert figures["plan_credits_granted"] == expected > 0
    assert all(figures[f"purchases_{kind}"] > 0 for kind in KINDS)


def test_the_oracle_reports_a_doubled_grant(applied, engine: Engine) -> None:
    payments, accepted, cursor = applied
    paid = next(p for p in payments.purchases.values() if p.kind == "plain" and "refund" not in p.roles.values())
    with engine.begin() as db:  # the bug it must catch: the same payment's grant applied twice
        db.execute(
            text("""INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed",
                                                details, timestamp)
                    SELECT id || 'x', "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp
                      FROM "UsageHistory" WHERE details->>'paymentId' = :p"""),
            {"p": paid.key},
        )
        db.execute(
            text("""UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + 500
                     WHERE "clerkUserId" = :c"""),
            {"c": paid.clerk_id},
        )
    double, mismatches, examples, _ = payments.check(cursor, accepted)
    assert double == 2  # the payer's balance and the payment's ledger rows
    assert any(example.startswith(f"double {paid.key}") for example in examples)


def test_the_oracle_reports_lost_grants_reversals_and_give_backs(applied, engine: Engine) -> None:
    payments, accepted, cursor = applied
    paid = next(p for p in payments.purchases.values() if p.kind == "plain" and "refund" not in p.roles.values())
    partial = _pick(payments, "partial", "partial")
    refunded = _pick(payments, "installments", "refund2")
    won = _pick(payments, "chargeback", "won")
    with engine.begin() as db:
        db.execute(text("""DELETE FROM "UsageHistory" WHERE details->>'paymentId' = :p"""), {"p": paid.key})
        for purchase, kind in ((partial, "plan_reversal"), (refunded, "plan_reversal"), (won, "chargeback_won")):
            db.execute(
                text("""DELETE FROM "UsageHistory" WHERE details->>'grantKey' = :g AND details->>'kind' = :k"""),
                {"g": purchase.grant_prefix, "k": kind},
            )
    _, mismatches, examples, _ = payments.check(cursor, accepted)
    for purchase in (paid, partial, refunded, won):
        assert any(example.startswith(f"{purchase.kind} {purchase.key}") for example in examples), examples
    assert mismatches >= 4

    # An accepted event with no effect at all (its SubscriptionEvent row missing) is a mismatch too.
    trial = _pick(payments, "trial")
    assert payments.check(cursor, accepted - set(trial.event_ids[:1]))[1] > mismatches
