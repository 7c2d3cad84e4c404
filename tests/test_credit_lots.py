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

from ingest.config.settings import ConfigError, load_settings
from migrations.runner import alembic_config, migrate
from models import OperationType, ledger
from models.base import utcnow
from models.db import make_engine, transaction
from models.ledger import lots
from tests.support.ledger import live_lots, make_webapp_user
from tests.support.servers import create_database, drop_database, rows, scalar
from tests.test_deductions import assert_balance_is_ledger, balance, deduct, pedro_user, refund, run_together
from workers.jobs import expire_credits as expiry
from workers.jobs import reconcile as service

GRANT = {"source_event_id": None}


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
        ledger.grant_once(
            session,
            ledger.CreditFact(user_id, clerk_id, None, {"kind": "plan_grant", "subscriptionId": None}),
            key="asaas:payment:pay_pack",
            plan_id=None,
            amount=2000,
        )
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
            session,
            ledger.CreditFact(user_id, clerk_id, None, {}),
            grant_key="asaas:payment:pay_pack",
            reversal_key="asaas:payment:pay_pack:reversal",
            fraction=Fraction(1),
        )
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


# ---- periods, renewal, expiry -----------------------------------------------------------------------------

NOW = utcnow()
P1 = lots.Period(NOW - dt.timedelta(days=5), NOW + dt.timedelta(days=25))
P2 = lots.Period(P1.end, P1.end + dt.timedelta(days=30))
AFTER_P1 = P1.end + dt.timedelta(days=4)  # past P1's end plus the 3-day grace, before P2's


def plan_grant(engine: Engine, user: tuple[str, str], period: lots.Period, rollover: int | None, key: str = "") -> None:
    with transaction(engine) as session:
        ledger.grant_once(
            session,
            ledger.CreditFact(user[0], user[1], None, {"kind": "plan_grant"}),
            key=key or f"clerk:subscription_item:si_1:{period.start:%Y%m%d}",
            plan_id=None,
            amount=500,
            period=period,
            terms=lots.LotTerms(grace=259200, rollover=rollover),
        )


def purchase(engine: Engine, user: tuple[str, str], amount: int = 2000) -> None:
    with transaction(engine) as session:
        ledger.grant_once(
            session,
            ledger.CreditFact(user[0], user[1], None, {"kind": "plan_grant", "subscriptionId": None}),
            key="asaas:payment:pay_pack",
            plan_id=None,
            amount=amount,
        )


def expire(engine: Engine, now: dt.datetime) -> expiry.ExpiryReport:
    return expiry.expire_credits(engine=engine, now=now, publish=False)


def expiry_rows(engine: Engine, user_id: str) -> list[int]:
    return [
        r[0]
        for r in rows(
            engine,
            """SELECT "creditsUsed" FROM "UsageHistory" WHERE "userId" = :u
                                           AND "operationType" = 'CREDIT_EXPIRY' ORDER BY timestamp""",
            u=user_id,
        )
    ]


@pytest.mark.parametrize(("rollover", "after_renewal"), [(0, 500), (None, 880), (200, 700)])
def test_a_monthly_plan_renews_with_its_rollover_and_a_purchase_is_untouched(
    engine: Engine, rollover: int | None, after_renewal: int
) -> None:
    user = user_id, clerk_id = pedro_user(engine, 0)
    plan_grant(engine, user, P1, rollover)
    deduct(engine, clerk_id, 120, "month-1")
    purchase(engine, user)
    assert balance(engine, user_id) == 2380
    plan_grant(engine, user, P2, rollover)
    assert balance(engine, user_id) == 2880, "nothing expires before the old period's end plus grace"

    report = expire(engine, AFTER_P1)

    assert balance(engine, user_id) == after_renewal + 2000
    expired = 2880 - 2000 - after_renewal
    assert expiry_rows(engine, user_id) == ([expired] if expired else []), "one ledger row for the old lot's rest"
    assert ("purchase", 2000, 2000) in lot_rows(engine, user_id)
    assert report.credits == expired and expire(engine, AFTER_P1).lots == 0, "expired once"
    assert_balance_is_ledger(engine, user_id)


def test_a_renewal_after_the_old_lot_expired_regrants_what_the_rollover_would_have_carried(engine: Engine) -> None:
    user_id, clerk_id = pedro_user(engine, 0)
    plan_grant(engine, (user_id, clerk_id), P1, None)
    deduct(engine, clerk_id, 120, "month-1")
    assert expire(engine, AFTER_P1).credits == 380
    plan_grant(engine, (user_id, clerk_id), P2, None)
    assert balance(engine, user_id) == 880
    assert sorted((row[0], row[2]) for row in lot_rows(engine, user_id) if row[2]) == [("plan", 500), ("rollover", 380)]
    plan_grant(engine, (user_id, clerk_id), P2, None)  # the same renewal again: a no-op
    assert balance(engine, user_id) == 880
    assert_balance_is_ledger(engine, user_id)


def test_fifty_deductions_race_the_expiry_job_and_a_renewal_on_one_user(engine: Engine) -> None:
    user_id, clerk_id = pedro_user(engine, 0)
    plan_grant(engine, (user_id, clerk_id), P1, 0)
    purchase(engine, (user_id, clerk_id), 100)
    calls: list[Callable[[], object]] = [lambda i=i: deduct(engine, clerk_id, 10, f"race-{i}") for i in range(50)]
    calls += [lambda: expire(engine, AFTER_P1), lambda: plan_grant(engine, (user_id, clerk_id), P2, 0)]

    results = run_together(calls)

    spent = sum(10 for r in results[:50] if r.ok)  # type: ignore[union-attr]
    expired = sum(expiry_rows(engine, user_id))
    assert balance(engine, user_id) == 500 + 500 + 100 - spent - expired
    assert scalar(engine, 'SELECT count(*) FROM "CreditLot" WHERE "userId" = :u AND remaining < 0', u=user_id) == 0
    assert len(expiry_rows(engine, user_id)) <= 1 and expire(engine, AFTER_P1).lots in (0, 1)
    assert len(expiry_rows(engine, user_id)) <= 1, "each lot expires once"
    assert_balance_is_ledger(engine, user_id)


def test_setting_the_rollover_and_its_alias_both_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match="PLAN_CREDITS_ROLLOVER or CREDIT_GRANT_POLICY"):
        load_settings(plan_credits_rollover="all", credit_grant_policy="add")
    assert load_settings(credit_grant_policy="add").plan_rollover is None
    assert load_settings(credit_grant_policy="reset").plan_rollover == 0
    assert load_settings(plan_credits_rollover="200").plan_rollover == 200
    assert load_settings().plan_rollover == 0
