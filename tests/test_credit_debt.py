"""Debt on reversals, on real PostgreSQL: a reversal that exceeds the balance is owed and repaid by the next
credits (or forgiven), and a won chargeback gives back exactly what its chargeback took, debt included.

A user with no other credits buys 500, spends 450, and the purchase is reversed.
"""

from __future__ import annotations

from fractions import Fraction

from sqlalchemy import Engine

from models import ledger
from models.db import transaction
from models.ledger import lots, pricing
from tests.support.servers import rows
from tests.test_deductions import assert_balance_is_ledger, balance, deduct, pedro_user, refund

PURCHASE = "asaas:payment:pay_buy"
PREFIX = PURCHASE + ledger.REVERSAL_SUFFIX
FORGIVE = lots.LotTerms(forgive=True)


def buy(engine: Engine, user: tuple[str, str], key: str = PURCHASE, amount: int = 500) -> None:
    with transaction(engine) as session:
        ledger.grant_once(
            session,
            ledger.CreditFact(user[0], user[1], None, {"kind": "plan_grant", "subscriptionId": None}),
            key=key,
            plan_id=None,
            amount=amount,
        )


def refund_purchase(engine: Engine, user: tuple[str, str], terms: lots.LotTerms | None = None) -> ledger.CreditChange:
    with transaction(engine) as session:
        return ledger.reverse_once(
            session,
            ledger.CreditFact(user[0], user[1], None, {}),
            grant_key=PURCHASE,
            reversal_key=PREFIX,
            fraction=Fraction(1),
            terms=terms,
        )


def charge_back(engine: Engine, user: tuple[str, str]) -> ledger.CreditChange:
    with transaction(engine) as session:
        return ledger.reverse_chargeback(
            session,
            ledger.CreditFact(user[0], user[1], None, {}),
            grant_key=PURCHASE,
            charge_prefix=PREFIX,
            fraction=Fraction(1),
            pending_base=500,
        )


def dispute_won(engine: Engine, user: tuple[str, str]) -> ledger.WonResult:
    with transaction(engine) as session:
        return ledger.chargeback_won(
            session, ledger.CreditFact(user[0], user[1], None, {}), grant_key=PURCHASE, charge_prefix=PREFIX
        )


def lot_view(engine: Engine, clerk_id: str) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        return [(lot.category, lot.remaining) for lot in pricing.credit_lots(connection, clerk_id)]


def spent_450(engine: Engine) -> tuple[str, str]:
    user = pedro_user(engine, 0)
    buy(engine, user)
    assert deduct(engine, user[1], 450, "spend").credits_remaining == 50
    return user


def test_a_refund_beyond_the_balance_is_a_debt_the_next_grant_repays_first(engine: Engine) -> None:
    user = spent_450(engine)
    change = refund_purchase(engine, user)
    assert (change.added, change.shortfall) == (-50, 450)
    assert balance(engine, user[0]) == 0
    assert lot_view(engine, user[1]) == [("debt", -450)]
    assert_balance_is_ledger(engine, user[0])

    buy(engine, user, "asaas:payment:pay_next")

    assert balance(engine, user[0]) == 50
    assert lot_view(engine, user[1]) == [("purchase", 50)]
    repaid = rows(engine, """SELECT "creditsUsed", details->>'debtKey' FROM "UsageHistory"
                             WHERE details->>'kind' = 'debt_repayment'""")  # fmt: skip
    assert repaid == [(450, PREFIX)], "booked in the ledger when repaid"
    assert_balance_is_ledger(engine, user[0])


def test_forgive_leaves_nothing_owed(engine: Engine) -> None:
    user = spent_450(engine)
    assert refund_purchase(engine, user, FORGIVE).shortfall == 450
    assert balance(engine, user[0]) == 0 and lot_view(engine, user[1]) == []
    buy(engine, user, "asaas:payment:pay_next")
    assert balance(engine, user[0]) == 500
    assert_balance_is_ledger(engine, user[0])


def test_a_refunded_deduction_repays_the_debt_before_it_is_spendable(engine: Engine) -> None:
    user = spent_450(engine)
    refund_purchase(engine, user)
    assert refund(engine, "spend", user[1]) == ledger.DeductionResult(True, 0, None)
    assert balance(engine, user[0]) == 0 and lot_view(engine, user[1]) == []
    assert_balance_is_ledger(engine, user[0])


def test_a_won_chargeback_restores_exactly_the_state_before_the_chargeback(engine: Engine) -> None:
    user = spent_450(engine)
    before = (balance(engine, user[0]), lot_view(engine, user[1]))
    assert charge_back(engine, user).shortfall == 450
    assert balance(engine, user[0]) == 0 and lot_view(engine, user[1]) == [("debt", -450)]

    assert dispute_won(engine, user).added == 50

    assert (balance(engine, user[0]), lot_view(engine, user[1])) == before == (50, [("purchase", 50)])
    assert_balance_is_ledger(engine, user[0])


def test_a_won_chargeback_gives_back_what_was_repaid_of_its_debt(engine: Engine) -> None:
    user = spent_450(engine)
    charge_back(engine, user)
    buy(engine, user, "asaas:payment:pay_next", 300)  # repays 300 of the 450 owed
    assert balance(engine, user[0]) == 0 and lot_view(engine, user[1]) == [("debt", -150)]

    assert dispute_won(engine, user).added == 350  # the 50 it took, and the 300 repaid; the 150 left is cancelled

    assert balance(engine, user[0]) == 350 and lot_view(engine, user[1])[-1] != ("debt", -150)
    assert_balance_is_ledger(engine, user[0])
