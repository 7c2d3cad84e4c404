"""The ledger's plan grants and reversals, called directly on real PostgreSQL (policies, races, invariant)."""

from __future__ import annotations

import threading
from fractions import Fraction

from sqlalchemy import Engine, text

from models import ledger
from models.db import transaction
from tests.support.ledger import assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user

OPENING = 70


def grant(engine: Engine, key: str, user: tuple[str, str], plan_id: str, amount: int):
    with transaction(engine) as session:
        return ledger.grant_once(
            session,
            ledger.CreditFact(user[0], user[1], None, {"kind": "plan_grant"}),
            key=key,
            plan_id=plan_id,
            amount=amount,
        )


def reverse(engine: Engine, key: str, user: tuple[str, str], fraction: Fraction = Fraction(1), suffix: str = ""):
    with transaction(engine) as session:
        return ledger.reverse_once(
            session,
            ledger.CreditFact(user[0], user[1], None, {"kind": "plan_reversal"}),
            grant_key=key,
            reversal_key=key + ledger.REVERSAL_SUFFIX + suffix,
            fraction=fraction,
        )


def test_user_without_a_balance_gets_one_opened_at_zero(engine) -> None:
    user = make_user(engine, OPENING)
    with engine.begin() as connection:
        connection.execute(text('DELETE FROM "CreditBalance" WHERE "userId" = :u'), {"u": user[0]})
    grant(engine, "test:fresh", user, make_plan(engine, 30), 30)
    assert balance(engine, user[0]) == 30
    assert_balance_matches_ledger(engine, user[0], 0)


def test_racing_grants_and_reversal_end_consistent(engine) -> None:
    """Many threads grant and reverse one payment at once: the grant happens at most once, and the
    balance ends at the opening balance whatever the interleaving (reversal before or after grant)."""
    for round_ in range(5):
        user = make_user(engine, OPENING)
        plan_id = make_plan(engine, 400)
        key = f"test:race:{round_}"
        barrier = threading.Barrier(9)
        errors: list[BaseException] = []

        def run(action, barrier=barrier, key=key, user=user, plan_id=plan_id, errors=errors) -> None:
            try:
                barrier.wait()
                if action == "grant":
                    grant(engine, key, user, plan_id, 400)
                else:
                    reverse(engine, key, user)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=("grant",)) for _ in range(8)]
        threads.append(threading.Thread(target=run, args=("reverse",)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert balance(engine, user[0]) == OPENING
        assert len(grant_rows(engine, key)) == 2  # the grant (or its tombstone) and the reversal
        assert_balance_matches_ledger(engine, user[0], OPENING)
