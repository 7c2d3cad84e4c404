"""Credits that come back to a lot that has already expired: they expire at once, in the same transaction.

A refunded deduction (or anything else that returns credits to the lots a fact drew from) whose lot expired
meanwhile would otherwise be spendable until the next expiry run. Instead the returned credits leave the
balance with their return: one `CREDIT_EXPIRY` ledger row keyed by the lot and the returning fact.
"""

from __future__ import annotations

from sqlalchemy import Engine

from tests.support.servers import rows
from tests.test_credit_lots import AFTER_P1, P1, expire, expiry_rows, lot_rows, plan_grant, purchase
from tests.test_deductions import assert_balance_is_ledger, balance, deduct, pedro_user, refund


def test_a_refund_to_an_expired_lot_expires_at_once_with_one_keyed_ledger_row(engine: Engine) -> None:
    user = user_id, clerk_id = pedro_user(engine, 0)
    plan_grant(engine, user, P1, 0)
    purchase(engine, user, 100)
    assert deduct(engine, clerk_id, 450, "spent").credits_remaining == 150  # all from the plan lot
    assert expire(engine, AFTER_P1).credits == 50
    assert balance(engine, user_id) == 100

    assert refund(engine, "spent", clerk_id).credits_remaining == 100  # returned and expired together
    assert balance(engine, user_id) == 100
    assert lot_rows(engine, user_id) == [("signup", 0, 0), ("purchase", 100, 100)], "no live lot past its expiry"
    assert expiry_rows(engine, user_id) == [50, 450]
    details = rows(
        engine,
        """SELECT details->>'lotId' IS NOT NULL, details->>'refundKey',
                  details->>'expiryKey' LIKE 'expiry:%:deduction:spent'
             FROM "UsageHistory" WHERE "userId" = :u AND "operationType" = 'CREDIT_EXPIRY' AND "creditsUsed" = 450""",
        u=user_id,
    )
    assert details == [(True, "deduction:spent", True)]
    assert expire(engine, AFTER_P1).lots == 0, "nothing left for the next run"
    assert refund(engine, "spent", clerk_id).credits_remaining == 100, "a refund replayed changes nothing"
    assert expiry_rows(engine, user_id) == [50, 450]
    assert_balance_is_ledger(engine, user_id)
