"""The web app's credit deduction (`pedro_deduct_credits`, `pedro_refund_credits`) on real PostgreSQL.

Concurrent callers use connections of their own, as the web app's serverless functions do; the ledger
invariant and reconciliation are checked after every race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from fractions import Fraction

import psycopg2
import pytest
from sqlalchemy import Engine, text

from models import OperationType, ledger
from models.db import transaction
from tests.support.factories import make_pedro_user, make_plan
from tests.support.ledger import live_lots
from tests.support.servers import rows, scalar
from workers.jobs import reconcile as service

DEDUCT_SQL = "SELECT ok, credits_remaining, reason FROM pedro_deduct_credits(%s, %s, %s, %s, %s)"


def pedro_user(engine: Engine, credits: int) -> tuple[str, str]:
    """A user opened by pedro-ingest with `credits` (signup grant); returns (User.id, clerkId)."""
    user_id, clerk_id, _ = make_pedro_user(engine, credits)
    return user_id, clerk_id


def libpq(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def deduct(engine: Engine, clerk_id: str, amount: int, key: str, details: dict | None = None) -> ledger.DeductionResult:
    with engine.begin() as connection:
        return ledger.deduct_credits(
            connection,
            clerk_user_id=clerk_id,
            amount=amount,
            operation=OperationType.AI_IMAGE_GENERATION,
            idempotency_key=key,
            details=details,
        )


def refund(engine: Engine, key: str, clerk_id: str | None = None) -> ledger.DeductionResult:
    with engine.begin() as connection:
        return ledger.refund_credits(connection, idempotency_key=key, clerk_user_id=clerk_id)


def balance(engine: Engine, user_id: str) -> int:
    return scalar(engine, 'SELECT "creditsRemaining" FROM "CreditBalance" WHERE "userId" = :u', u=user_id)


def usage_rows(engine: Engine, user_id: str) -> list[tuple]:
    return rows(
        engine,
        """SELECT "operationType"::text, "creditsUsed" FROM "UsageHistory"
            WHERE "userId" = :u AND "operationType" = 'AI_IMAGE_GENERATION' ORDER BY timestamp, "creditsUsed" DESC""",
        u=user_id,
    )


def assert_balance_is_ledger(engine: Engine, user_id: str) -> None:
    ledger_total = scalar(engine, 'SELECT -sum("creditsUsed") FROM "UsageHistory" WHERE "userId" = :u', u=user_id)
    assert balance(engine, user_id) == ledger_total
    report = service.reconcile(fix=False, engine=engine)
    assert (report.drifted, report.openings, report.lots_settled) == (0, 0, 0), report.summary()
    assert live_lots(engine, user_id) == balance(engine, user_id)


def run_together(calls: list[Callable[[], object]]) -> list[object]:
    """Start every call at the same moment on its own thread; returns results in order, raises the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_fifty_concurrent_deductions_with_credits_for_twenty(engine: Engine) -> None:
    user_id, clerk_id, _ = make_pedro_user(engine, 100)
    connections = [psycopg2.connect(libpq(engine)) for _ in range(50)]

    def call(index: int) -> Callable[[], tuple]:
        def deduct_on_own_connection() -> tuple:
            connection = connections[index]
            with connection, connection.cursor() as cursor:
                cursor.execute(DEDUCT_SQL, (clerk_id, 5, "AI_IMAGE_GENERATION", f"race-{index}", None))
                return cursor.fetchone()

        return deduct_on_own_connection

    try:
        results = run_together([call(i) for i in range(50)])
    finally:
        for connection in connections:
            connection.close()

    succeeded = [r for r in results if r[0]]
    assert len(succeeded) == 20
    assert sorted(r[1] for r in succeeded) == list(range(0, 100, 5)), "each success saw the one before it"
    assert {(r[0], r[1], r[2]) for r in results if not r[0]} == {(False, 0, "insufficient_credits")}
    assert balance(engine, user_id) == 0
    assert usage_rows(engine, user_id) == [("AI_IMAGE_GENERATION", 5)] * 20
    assert scalar(engine, 'SELECT count(*) FROM "CreditDeduction" WHERE "clerkUserId" = :c', c=clerk_id) == 20
    assert_balance_is_ledger(engine, user_id)


@pytest.mark.parametrize("first_commits", [True, False])
def test_the_same_key_from_two_connections_at_once_deducts_once(engine: Engine, first_commits: bool) -> None:
    """The second call waits on the first one's claim; it then returns that result, or deducts if it rolled back."""
    user_id, clerk_id, _ = make_pedro_user(engine, 100)
    first = psycopg2.connect(libpq(engine))
    second = psycopg2.connect(libpq(engine))
    try:
        with first.cursor() as cursor:
            cursor.execute(DEDUCT_SQL, (clerk_id, 30, "AI_IMAGE_GENERATION", "same-key", None))
            assert cursor.fetchone() == (True, 70, None)
        outcome: list[tuple] = []

        def second_call() -> None:
            with second, second.cursor() as cursor:
                cursor.execute(DEDUCT_SQL, (clerk_id, 30, "AI_IMAGE_GENERATION", "same-key", None))
                outcome.append(cursor.fetchone())

        thread = threading.Thread(target=second_call)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
        with psycopg2.connect(libpq(engine)) as watcher, watcher.cursor() as cursor:
            while not outcome:
                cursor.execute(waiting, (second.get_backend_pid(),))
                if cursor.fetchone()[0]:
                    break
        assert outcome == [], "the second call must wait for the first one's claim"
        first.commit() if first_commits else first.rollback()
        thread.join()
    finally:
        first.close()
        second.close()

    assert outcome == [(True, 70, None)]
    assert balance(engine, user_id) == 70
    assert usage_rows(engine, user_id) == [("AI_IMAGE_GENERATION", 30)]
    assert deduct(engine, clerk_id, 30, "same-key") == ledger.DeductionResult(True, 70, None), "later: first result"
    assert balance(engine, user_id) == 70
    assert_balance_is_ledger(engine, user_id)


def test_deduction_racing_a_plan_grant_and_a_reversal_keeps_balance_equal_to_ledger(engine: Engine) -> None:
    for round_ in range(4):
        user_id, clerk_id, _ = make_pedro_user(engine, 10)
        plan_id = make_plan(engine, 300)
        key = f"test:race-deduct:{round_}"

        def grant(user_id: str = user_id, clerk_id: str = clerk_id, plan_id: str = plan_id, key: str = key) -> object:
            with transaction(engine) as session:
                return ledger.grant_once(
                    session,
                    ledger.CreditFact(user_id, clerk_id, None, {"kind": "plan_grant"}),
                    key=key,
                    plan_id=plan_id,
                    amount=300,
                )

        def reverse(user_id: str = user_id, clerk_id: str = clerk_id, key: str = key) -> object:
            with transaction(engine) as session:
                return ledger.reverse_once(
                    session,
                    ledger.CreditFact(user_id, clerk_id, None, {"kind": "plan_reversal"}),
                    grant_key=key,
                    reversal_key=key + ledger.REVERSAL_SUFFIX,
                    fraction=Fraction(1),
                )

        deductions = [
            lambda i=i, clerk_id=clerk_id, round_=round_: deduct(engine, clerk_id, 40, f"r{round_}-{i}")
            for i in range(6)
        ]
        results = run_together([grant, reverse, *deductions])

        taken = sum(40 for r in results[2:] if r.ok)  # type: ignore[union-attr]
        assert all(r.credits_remaining is None or r.credits_remaining >= 0 for r in results[2:])  # type: ignore[union-attr]
        assert balance(engine, user_id) >= 0
        assert usage_rows(engine, user_id) == [("AI_IMAGE_GENERATION", 40)] * (taken // 40)
        assert_balance_is_ledger(engine, user_id)


def test_refused_deductions_change_nothing_and_say_why(engine: Engine) -> None:
    user_id, clerk_id, _ = make_pedro_user(engine, 50)
    assert deduct(engine, clerk_id, 0, "k0") == ledger.DeductionResult(False, None, "invalid_amount")
    assert deduct(engine, clerk_id, -5, "k1") == ledger.DeductionResult(False, None, "invalid_amount")
    assert deduct(engine, clerk_id, 51, "k2") == ledger.DeductionResult(False, 50, "insufficient_credits")
    assert deduct(engine, "user_nobody", 1, "k3") == ledger.DeductionResult(False, None, "unknown_user")
    assert balance(engine, user_id) == 50 and usage_rows(engine, user_id) == []
    assert deduct(engine, clerk_id, 50, "k2") == ledger.DeductionResult(True, 0, None), "a refused key stays free"

    with engine.begin() as connection:
        connection.execute(text("""UPDATE "User" SET "isActive" = false WHERE id = :u"""), {"u": user_id})
    assert refund(engine, "k2") == ledger.DeductionResult(True, 50, None)
    assert deduct(engine, clerk_id, 1, "k4") == ledger.DeductionResult(False, 50, "inactive_user")
    assert balance(engine, user_id) == 50
    assert_balance_is_ledger(engine, user_id)


def test_refund_gives_a_deduction_back_once(engine: Engine) -> None:
    user_id, clerk_id, _ = make_pedro_user(engine, 100)
    assert deduct(engine, clerk_id, 25, "ai-call-1", {"model": "flux", "prompt": "a cat"}).credits_remaining == 75
    assert deduct(engine, clerk_id, 10, "ai-call-2", {"model": "gpt"}).credits_remaining == 65

    results = run_together([lambda: refund(engine, "ai-call-1") for _ in range(4)])

    assert set(results) == {ledger.DeductionResult(True, 90, None)}
    assert refund(engine, "ai-call-1") == ledger.DeductionResult(True, 90, None)
    assert refund(engine, "never-deducted") == ledger.DeductionResult(False, None, "unknown_deduction")
    assert balance(engine, user_id) == 90
    assert usage_rows(engine, user_id) == [("AI_IMAGE_GENERATION", 25), ("AI_IMAGE_GENERATION", 10),
                                           ("AI_IMAGE_GENERATION", -25)]  # fmt: skip
    details = rows(
        engine, """SELECT details FROM "UsageHistory" WHERE "userId" = :u AND "operationType" = 'AI_IMAGE_GENERATION'
                   ORDER BY timestamp, "creditsUsed" DESC""", u=user_id,
    )  # fmt: skip
    assert details[0][0] == {"model": "flux", "prompt": "a cat", "idempotencyKey": "ai-call-1"}
    assert details[2][0]["kind"] == "refund" and details[2][0]["idempotencyKey"] == "ai-call-1"
    assert_balance_is_ledger(engine, user_id)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("user_x", 1, "AI_TEXT_CHAT", None, None), "idempotency_key is required"),
        (("user_x", 1, "CREDIT_GRANT", "k", None), "is not a usage type"),
    ],
)
def test_programming_errors_raise_a_clear_error(engine: Engine, arguments: tuple, message: str) -> None:
    connection = psycopg2.connect(libpq(engine))
    try:
        with pytest.raises(psycopg2.errors.InvalidParameterValue, match=message):
            connection.cursor().execute(DEDUCT_SQL, arguments)
    finally:
        connection.close()


def test_a_key_reused_for_another_deduction_is_an_error(engine: Engine) -> None:
    user_id, clerk_id, _ = make_pedro_user(engine, 100)
    deduct(engine, clerk_id, 10, "reused")
    with pytest.raises(Exception, match="was used for another deduction"):
        deduct(engine, clerk_id, 11, "reused")
    assert balance(engine, user_id) == 90


def test_null_and_oversized_inputs_get_a_reason_and_store_nothing(engine: Engine) -> None:
    user_id, clerk_id = pedro_user(engine, 50)
    connection = psycopg2.connect(libpq(engine))
    try:
        cursor = connection.cursor()
        cursor.execute(DEDUCT_SQL, (None, 1, "AI_TEXT_CHAT", "null-user", None))
        assert cursor.fetchone() == (False, None, "unknown_user")
        cursor.execute(DEDUCT_SQL, (clerk_id, None, "AI_TEXT_CHAT", "null-amount", None))
        assert cursor.fetchone() == (False, None, "invalid_amount")
        connection.commit()
    finally:
        connection.close()
    at_limit = {"prompt": "x" * (16384 - len('{"prompt": ""}'))}
    assert deduct(engine, clerk_id, 1, "big", {"prompt": "x" * 16384}) == ledger.DeductionResult(
        False, None, "invalid_details"
    )
    assert deduct(engine, clerk_id, 1, "ten-mb", {"prompt": "x" * 10_000_000}).reason == "invalid_details"
    assert scalar(engine, 'SELECT count(*) FROM "CreditDeduction" WHERE "clerkUserId" = :c', c=clerk_id) == 0
    assert deduct(engine, clerk_id, 1, "big", at_limit) == ledger.DeductionResult(True, 49, None), "16,384 bytes fit"
    assert_balance_is_ledger(engine, user_id)


def test_a_refund_naming_another_user_refunds_nothing(engine: Engine) -> None:
    payer_id, payer = pedro_user(engine, 100)
    _, other = pedro_user(engine, 100)
    assert deduct(engine, payer, 30, "payer-call").ok
    assert refund(engine, "payer-call", other) == ledger.DeductionResult(False, None, "unknown_deduction")
    assert balance(engine, payer_id) == 70
    assert refund(engine, "payer-call", payer) == ledger.DeductionResult(True, 100, None)
    assert refund(engine, "payer-call") == ledger.DeductionResult(True, 100, None), "the one-argument call still works"
    assert_balance_is_ledger(engine, payer_id)
