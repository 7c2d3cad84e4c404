"""Credit lots on real PostgreSQL: draw-down order, deductions and refunds on lots, reversals, adoption.

Invariant after every step: balance == Σ live lots' remaining == −Σ ledger, and no lot below zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest
from alembic import command
from sqlalchemy import Engine, text

from migrations.runner import alembic_config, migrate
from models import OperationType, ledger
from models.db import make_engine, transaction
from models.ledger import lots
from tests.support.ledger import live_lots, make_webapp_user
from tests.support.servers import create_database, drop_database, rows, scalar
from tests.test_deductions import assert_balance_is_ledger, balance, deduct, pedro_user, refund
from workers.jobs import reconcile as service

GRANT = {"policy": "add", "source_event_id": None}


@pytest.fixture
def new_database() -> Iterator[Callable[[], str]]:
    """Empty throw-away databases, dropped after the test."""
    names: list[str] = []

    def make() -> str:
        name, url = create_database("pedro_lots")
        names.append(name)
        return url

    yield make
    for name in names:
        drop_database(name)


def lot_rows(engine: Engine, user_id: str) -> list[tuple]:
    return rows(
        engine,
        """SELECT category, amount, remaining FROM "CreditLot"
            WHERE "userId" = :u AND "expiredAt" IS NULL AND "voidedAt" IS NULL
            ORDER BY priority, "expiresAt" NULLS LAST, "effectiveAt", id""",
        u=user_id,
    )


def three_lots(engine: Engine) -> tuple[str, str]:
    """Signup 100 (never expires), a plan period of 500 expiring in 30 days, a purchase of 2,000."""
    user_id, clerk_id = pedro_user(engine, 100)
    with transaction(engine) as session:
        lots.add(session, user_id=user_id, amount=500, grant_key="test:plan:1", category="plan",
                 expires_at=dt.datetime(2099, 1, 31))  # fmt: skip
        ledger.write_ledger_row(session, user_id=user_id, balance_id=_balance_id(engine, user_id),
                                operation=OperationType.CREDIT_GRANT, added=500, details={"kind": "test"})  # fmt: skip
        ledger.grant_once(session, key="asaas:payment:pay_pack", user_id=user_id, clerk_id=clerk_id, plan_id=None,
                          amount=2000, details={"kind": "plan_grant", "subscriptionId": None}, **GRANT)  # fmt: skip
    return user_id, clerk_id


def _balance_id(engine: Engine, user_id: str) -> str:
    return scalar(engine, 'SELECT id FROM "CreditBalance" WHERE "userId" = :u', u=user_id)


def test_draw_down_spends_the_expiring_plan_lot_first_and_a_refund_returns_to_the_same_lots(engine: Engine) -> None:
    user_id, clerk_id = three_lots(engine)
    assert lot_rows(engine, user_id) == [("plan", 500, 500), ("signup", 100, 100), ("purchase", 2000, 2000)]

    assert deduct(engine, clerk_id, 450, "a").credits_remaining == 2150
    assert lot_rows(engine, user_id) == [("plan", 500, 50), ("signup", 100, 100), ("purchase", 2000, 2000)]
    assert deduct(engine, clerk_id, 120, "b").credits_remaining == 2030
    assert lot_rows(engine, user_id) == [("plan", 500, 0), ("signup", 100, 30), ("purchase", 2000, 2000)]
    assert deduct(engine, clerk_id, 60, "c").credits_remaining == 1970
    assert lot_rows(engine, user_id) == [("plan", 500, 0), ("signup", 100, 0), ("purchase", 2000, 1970)]
    assert_balance_is_ledger(engine, user_id)

    assert refund(engine, "b", clerk_id).credits_remaining == 2090
    assert lot_rows(engine, user_id) == [("plan", 500, 50), ("signup", 100, 70), ("purchase", 2000, 1970)]
    assert refund(engine, "b", clerk_id).credits_remaining == 2090, "a refund returns its credits once"
    assert lot_rows(engine, user_id)[1] == ("signup", 100, 70)
    assert_balance_is_ledger(engine, user_id)


def test_a_reversal_takes_its_own_grants_lot_first_then_the_draw_down(engine: Engine) -> None:
    user_id, clerk_id = three_lots(engine)
    deduct(engine, clerk_id, 1900, "big")  # plan 500, signup 100, purchase 1,300: the purchase keeps 700
    with transaction(engine) as session:
        change = ledger.reverse_once(
            session, grant_key="asaas:payment:pay_pack", reversal_key="asaas:payment:pay_pack:reversal",
            user_id=user_id, clerk_id=clerk_id, fraction=Fraction(1), source_event_id=None, details={},
        )  # fmt: skip
    assert (change.added, change.shortfall) == (-700, 1300)
    assert lot_rows(engine, user_id) == [("plan", 500, 0), ("signup", 100, 0), ("purchase", 2000, 0)]
    assert balance(engine, user_id) == 0
    assert_balance_is_ledger(engine, user_id)


def test_a_balance_the_web_app_created_gets_its_opening_lot_from_reconcile_or_its_first_deduction(
    engine: Engine,
) -> None:
    user_a, _, _ = make_webapp_user(engine, 100)
    user_b, clerk_b, _ = make_webapp_user(engine, 100)
    assert deduct(engine, clerk_b, 30, "first").credits_remaining == 70
    assert lot_rows(engine, user_b) == [("opening", 100, 70)]

    report = service.reconcile(fix=False, engine=engine, use_lock=False)

    assert report.lots_settled == 1 and report.openings == 2
    assert lot_rows(engine, user_a) == [("opening", 100, 100)]
    assert_balance_is_ledger(engine, user_a)
    assert_balance_is_ledger(engine, user_b)


def test_reconcile_settles_lots_that_disagree_with_their_balance(engine: Engine) -> None:
    user_id, clerk_id = pedro_user(engine, 100)
    with engine.begin() as connection:
        connection.execute(text("""UPDATE "CreditLot" SET remaining = 60 WHERE "userId" = :u"""), {"u": user_id})
    assert service.reconcile(fix=False, clerk_user_id=clerk_id, engine=engine, use_lock=False).lots_settled == 1
    assert lot_rows(engine, user_id) == [("signup", 100, 60), ("adjustment", 40, 40)]
    assert service.reconcile(fix=False, clerk_user_id=clerk_id, engine=engine, use_lock=False).lots_settled == 0
    assert_balance_is_ledger(engine, user_id)


def test_migrate_gives_every_existing_balance_one_opening_lot(new_database: Callable[[], str]) -> None:
    url = new_database()
    migrate(url, "0010")
    engine = make_engine(url, pool_size=1)
    try:
        with_credits, _, _ = make_webapp_user(engine, 250)
        empty, _, _ = make_webapp_user(engine, 0)
        command.upgrade(alembic_config(url), "head")
        assert lot_rows(engine, with_credits) == [("opening", 250, 250)]
        assert lot_rows(engine, empty) == []
        assert live_lots(engine, with_credits) == 250
    finally:
        engine.dispose()
