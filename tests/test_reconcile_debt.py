"""Reconciliation and debt: a debt exists only while the balance is 0, and reconcile's own credits repay it.

A balance above 0 beside an open debt can only come from a change behind the ledger functions' back (every
writer of pedro-ingest and the web app's functions repay debt first): reconcile reports it as drift, and with
`fix` repays the debt from that balance. Credits reconcile itself brings into the lots (an opening lot, an
adjustment lot) repay open debt first, like every other credit.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from models import OperationType, ledger
from models.db import transaction
from tests.support.ledger import make_webapp_user
from tests.support.servers import rows, scalar
from tests.test_credit_debt import buy, refund_purchase, spent_450
from tests.test_deductions import assert_balance_is_ledger, balance, deduct
from workers.jobs import reconcile as service


def owed(engine: Engine, user_id: str) -> int:
    return int(scalar(engine, 'SELECT COALESCE(sum(remaining), 0) FROM "CreditDebt" WHERE "userId" = :u', u=user_id))


def credit_without_repaying(engine: Engine, user_id: str, amount: int) -> None:
    """What a writer that skips the debt would do: balance, ledger row and lot, all agreeing."""
    with transaction(engine) as session:
        balance_id = session.execute(
            text("""UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + :n WHERE "userId" = :u
                    RETURNING id"""),
            {"n": amount, "u": user_id},
        ).scalar_one()
        ledger.write_ledger_row(
            session,
            user_id=user_id,
            balance_id=balance_id,
            operation=OperationType.CREDIT_ADJUSTMENT,
            added=amount,
            details={"kind": "test"},
        )
        session.execute(
            text("""SELECT pedro_lot_insert(:b, :u, NULL, 'adjustment', :n, :n, CAST(NULL AS timestamp),
                                NULL, CAST(NULL AS timestamp))"""),
            {"b": balance_id, "u": user_id, "n": amount},
        )
    # fmt: skip


def test_a_debt_beside_a_positive_balance_is_reported_and_repaid_by_fix(engine: Engine) -> None:
    user = user_id, clerk_id = spent_450(engine)
    refund_purchase(engine, user)
    assert (balance(engine, user_id), owed(engine, user_id)) == (0, 450)
    credit_without_repaying(engine, user_id, 100)

    report = service.reconcile(fix=False, clerk_user_id=clerk_id, engine=engine, use_lock=False)
    assert (report.drifted, report.debt_drifted, report.fixed) == (1, 1, 0)
    assert (balance(engine, user_id), owed(engine, user_id)) == (100, 450), "only reported without fix"

    report = service.reconcile(fix=True, clerk_user_id=clerk_id, engine=engine, use_lock=False)
    assert (report.drifted, report.debt_drifted, report.fixed) == (1, 1, 1)
    assert (balance(engine, user_id), owed(engine, user_id)) == (0, 350)
    repayments = rows(engine, """SELECT "creditsUsed" FROM "UsageHistory" WHERE "userId" = :u
                                  AND details->>'kind' = 'debt_repayment'""", u=user_id)  # fmt: skip
    assert repayments == [(100,)]
    assert_balance_is_ledger(engine, user_id)
    again = service.reconcile(fix=False, clerk_user_id=clerk_id, engine=engine, use_lock=False)
    assert (again.drifted, again.debt_drifted) == (0, 0)


def test_reconciles_opening_and_adjustment_lots_repay_open_debt_first(engine: Engine) -> None:
    user_id, clerk_id, _ = make_webapp_user(engine, 100)  # no origin: reconcile records its opening
    buy(engine, (user_id, clerk_id))
    assert deduct(engine, clerk_id, 550, "all").credits_remaining == 50
    refund_purchase(engine, (user_id, clerk_id))
    assert (balance(engine, user_id), owed(engine, user_id)) == (0, 450)
    with engine.begin() as connection:  # the web app tops the balance up behind the ledger
        connection.execute(text("""UPDATE "CreditBalance" SET "creditsRemaining" = 200 WHERE "userId" = :u"""),
                           {"u": user_id})  # fmt: skip

    report = service.reconcile(fix=False, clerk_user_id=clerk_id, engine=engine, use_lock=False)

    assert report.openings == 1
    assert (balance(engine, user_id), owed(engine, user_id)) == (0, 250), "the 200 repaid the debt first"
    live = rows(engine, """SELECT COALESCE(sum(remaining), 0) FROM "CreditLot" WHERE "userId" = :u
                            AND "expiredAt" IS NULL AND "voidedAt" IS NULL""", u=user_id)  # fmt: skip
    assert live == [(0,)]
    assert_balance_is_ledger(engine, user_id)
    again = service.reconcile(fix=False, clerk_user_id=clerk_id, engine=engine, use_lock=False)
    assert (again.drifted, again.debt_drifted, again.lots_settled) == (0, 0, 0)
