"""The chaos run's payment oracle must pass on a correct database and catch a double grant, a missing
grant and a lost log row (a check that cannot fail proves nothing)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import psycopg2
import pytest
from sqlalchemy import Engine, text

from bench.chaos_payments import GRANTING, REFUND, AsaasPayments
from tests.support.inbox import store_event
from workers.processing import process_event


@pytest.fixture
def applied(engine: Engine, database: str) -> Iterator[tuple[AsaasPayments, set[str], psycopg2.extensions.cursor]]:
    """Payments generated, seeded and applied by the real handlers; the refund-first ones really first."""
    rng = random.Random(7)
    payments = AsaasPayments(payers=4, refund_share=0.5, refund_first_share=0.5)
    bodies = dict(payments.generate(40, rng))
    assert any(p.refund_first for p in payments.payments.values())
    with contextlib.closing(psycopg2.connect(database)) as connection:
        with connection:
            payments.seed(connection)
        held = payments.held_back()
        order = [event_id for event_id in bodies if event_id not in held]
        rng.shuffle(order)
        row_ids = [
            store_event(
                engine,
                bodies[event_id],
                provider="asaas",
                event_id=event_id,
                event_type=payments.events[event_id]["event"],
            )
            for event_id in [*order, *held]
        ]
        for row_id in row_ids:
            assert process_event(row_id, engine=engine).status == "processed"
        with connection.cursor() as cursor:
            yield payments, set(bodies), cursor


def test_the_oracle_agrees_with_a_correct_run_including_refunds_before_their_grant(applied) -> None:
    payments, accepted, cursor = applied
    double, mismatches, examples, figures = payments.check(cursor, accepted)
    assert (double, mismatches, examples) == (0, 0, [])
    # The held-back ones for sure, and those the shuffle put before their grant.
    assert figures["refunds_before_grant"] >= sum(p.refund_first for p in payments.payments.values()) > 0
    assert figures["plan_credits_granted"] == 500 * sum(not p.refunded for p in payments.payments.values())


def test_the_oracle_reports_a_doubled_grant(applied, engine: Engine) -> None:
    payments, accepted, cursor = applied
    paid = next(p for p in payments.payments.values() if not p.refunded)
    with engine.begin() as db:  # the bug it must catch: the same payment's grant applied twice
        db.execute(
            text("""INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed",
                                                details, timestamp)
                    SELECT id || 'x', "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp
                      FROM "UsageHistory" WHERE details->>'paymentId' = :p"""),
            {"p": paid.payment_id},
        )
        db.execute(
            text("""UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + 500
                     WHERE "clerkUserId" = :c"""),
            {"c": paid.clerk_id},
        )
    double, mismatches, examples, _ = payments.check(cursor, accepted)
    assert double == 2  # the payer's balance and the payment's ledger rows
    assert any(example.startswith(f"double {paid.payment_id}") for example in examples)


def test_the_oracle_reports_a_lost_grant_a_net_refund_and_a_missing_log_row(applied, engine: Engine) -> None:
    payments, accepted, cursor = applied
    paid = next(p for p in payments.payments.values() if not p.refunded)
    refunded = next(p for p in payments.payments.values() if p.refunded and not p.refund_first)
    with engine.begin() as db:
        db.execute(text("""DELETE FROM "UsageHistory" WHERE details->>'paymentId' = :p"""), {"p": paid.payment_id})
        db.execute(  # the refund's reversal lost: the refunded payment keeps its credits
            text(
                """DELETE FROM "UsageHistory"
                    WHERE details->>'paymentId' = :p AND "operationType" = 'CREDIT_REVERSAL'"""
            ),
            {"p": refunded.payment_id},
        )
    _, mismatches, examples, _ = payments.check(cursor, accepted)
    assert any(example.startswith(f"grant {paid.payment_id}") for example in examples)
    assert any(example.startswith(f"refund {refunded.payment_id}") for example in examples)
    assert mismatches >= 2

    # An accepted event with no effect at all (its SubscriptionEvent row missing) is a mismatch too.
    grant_event = next(e for e in refunded.event_ids if payments.events[e]["event"] in GRANTING)
    refund_event = next(e for e in refunded.event_ids if payments.events[e]["event"] == REFUND)
    assert payments.check(cursor, accepted - {grant_event, refund_event})[1] > mismatches
