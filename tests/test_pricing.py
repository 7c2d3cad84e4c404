"""Priced operations (`pedro_charge_operation`), the current plan and the lot view on real PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text

from models import OperationType, ledger
from models.db import transaction
from models.ledger import pricing
from tests.support.ledger import make_plan
from tests.test_deductions import assert_balance_is_ledger, balance, pedro_user, refund

TEXT, IMAGE = OperationType.AI_TEXT_CHAT, OperationType.AI_IMAGE_GENERATION


def feature_costs(engine: Engine, costs: object) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("""INSERT INTO "AdminSettings" (id, "featureCosts", "updatedAt")
                    VALUES ('singleton', CAST(:c AS jsonb), now())
                    ON CONFLICT (id) DO UPDATE SET "featureCosts" = EXCLUDED."featureCosts" """),
            {"c": json.dumps(costs)},
        )  # fmt: skip


def charge(engine: Engine, clerk_id: str | None, operation: OperationType, key: str, quantity: int = 1,
           details: dict | None = None) -> pricing.ChargeResult:  # fmt: skip
    with engine.begin() as connection:
        return pricing.charge_operation(
            connection, clerk_user_id=clerk_id, operation=operation, idempotency_key=key, quantity=quantity,
            details=details,
        )  # fmt: skip


def on_plan(engine: Engine, credits: int, features: object) -> tuple[str, str, str]:
    """A user with a signup of 100 and one paid period of `plan`; returns (User.id, clerkId, Plan.id)."""
    plan_id = make_plan(engine, credits, features=json.dumps(features))
    user_id, clerk_id = pedro_user(engine, 100)
    with transaction(engine) as session:
        ledger.grant_once(
            session,
            ledger.CreditFact(user_id, clerk_id, None, {"kind": "plan_grant"}),
            key=f"clerk:subscription_item:cs_{clerk_id}:1",
            plan_id=plan_id,
            amount=credits,
        )
    return user_id, clerk_id, plan_id


def test_the_plan_price_wins_over_feature_costs_and_an_unpriced_operation_is_refused(engine: Engine) -> None:
    feature_costs(engine, {"AI_TEXT_CHAT": 1, "AI_IMAGE_GENERATION": 10})
    user_id, clerk_id, plan_id = on_plan(engine, 500, {"AI_IMAGE_GENERATION": 4, "AI_TEXT_CHAT": "free"})
    _, other = pedro_user(engine, 100)

    assert charge(engine, clerk_id, IMAGE, "img-1", 3) == pricing.ChargeResult(True, 588, 12, None)
    assert charge(engine, clerk_id, TEXT, "txt-1", 2) == pricing.ChargeResult(True, 586, 2, None), "not an int"
    assert charge(engine, other, IMAGE, "img-2") == pricing.ChargeResult(True, 90, 10, None), "no plan: featureCosts"
    unpriced = charge(engine, clerk_id, OperationType.AI_VIDEO_GENERATION, "video-1")
    assert unpriced == pricing.ChargeResult(False, 586, None, "unpriced_operation")
    with engine.connect() as connection:
        assert pricing.current_plan(connection, clerk_id) == pricing.CurrentPlan(plan_id, None, "active")
        assert pricing.current_plan(connection, other) is None
        assert [(lot.category, lot.remaining) for lot in pricing.credit_lots(connection, clerk_id)] == [
            ("plan", 486), ("signup", 100)]  # fmt: skip
    assert_balance_is_ledger(engine, user_id)


def test_the_same_key_charges_once_even_after_the_price_changes(engine: Engine) -> None:
    feature_costs(engine, {"AI_IMAGE_GENERATION": 10})
    user_id, clerk_id = pedro_user(engine, 100)
    first = charge(engine, clerk_id, IMAGE, "same", 2)
    feature_costs(engine, {"AI_IMAGE_GENERATION": 25})
    assert charge(engine, clerk_id, IMAGE, "same", 2) == first == pricing.ChargeResult(True, 80, 20, None)
    assert refund(engine, "same", clerk_id) == ledger.DeductionResult(True, 100, None), "refunded like a deduction"
    assert balance(engine, user_id) == 100
    assert_balance_is_ledger(engine, user_id)


@pytest.mark.parametrize(
    ("clerk", "quantity", "details", "costs", "expected"),
    [
        ("user", 0, None, {"AI_TEXT_CHAT": 1}, (False, None, None, "invalid_amount")),
        ("user", None, None, {"AI_TEXT_CHAT": 1}, (False, None, None, "invalid_amount")),
        ("user", 1, {"p": "x" * 20000}, {"AI_TEXT_CHAT": 1}, (False, None, None, "invalid_details")),
        (None, 1, None, {"AI_TEXT_CHAT": 1}, (False, None, None, "unknown_user")),
        ("nobody", 1, None, {}, (False, None, None, "unknown_user")),
        ("user", 1, None, {}, (False, 30, None, "unpriced_operation")),
        ("user", 1, None, {"AI_TEXT_CHAT": -1}, (False, 30, None, "unpriced_operation")),
        ("user", 1, None, {"AI_TEXT_CHAT": 1.5}, (False, 30, None, "unpriced_operation")),
        ("user", 4, None, {"AI_TEXT_CHAT": 8}, (False, 30, 32, "insufficient_credits")),
        ("user", 3, None, {"AI_TEXT_CHAT": 0}, (True, 30, 0, None)),
    ],
)
def test_checks_come_in_their_documented_order(
    engine: Engine, clerk: str | None, quantity: int | None, details: dict | None, costs: dict, expected: tuple
) -> None:
    feature_costs(engine, costs)
    user_id, clerk_id = pedro_user(engine, 30)
    who = {"user": clerk_id, "nobody": "user_nobody", None: None}[clerk]
    assert charge(engine, who, TEXT, "k", quantity, details) == pricing.ChargeResult(*expected)  # type: ignore[arg-type]
    assert balance(engine, user_id) == 30
    assert_balance_is_ledger(engine, user_id)


def test_an_inactive_user_is_refused_before_the_price_is_looked_up(engine: Engine) -> None:
    user_id, clerk_id = pedro_user(engine, 30)
    with engine.begin() as connection:
        connection.execute(text("""UPDATE "User" SET "isActive" = false WHERE id = :u"""), {"u": user_id})
    assert charge(engine, clerk_id, TEXT, "k") == pricing.ChargeResult(False, 30, None, "inactive_user")
