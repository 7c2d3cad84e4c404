"""An Asaas plan period is `[dueDate, dueDate + cycle)`, the cycle learnt from the subscription's events.

A payment whose subscription's cycle is not known yet counts as MONTHLY; the `SUBSCRIPTION_CREATED` or
`UPDATED` that tells the cycle corrects that period's live lots. `nextDueDate` counts only when a payment
has no `dueDate`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Engine

from tests.support.asaas import asaas_payment_event, asaas_subscription_event, deliver_asaas
from tests.support.ledger import assert_balance_matches_ledger, make_plan, make_user, settle
from tests.support.servers import rows

CREDITS = 500
GRACE = dt.timedelta(seconds=259200)  # PLAN_CREDITS_GRACE's default


def _subscription(
    clerk_id: str, plan_id: str, cycle: str, event_type: str = "SUBSCRIPTION_CREATED"
) -> tuple[str, dict[str, Any]]:
    subscription = f"sub_{secrets.token_hex(5)}"
    return subscription, _cycle_event(event_type, subscription, clerk_id, plan_id, cycle)


def _cycle_event(event_type: str, subscription: str, clerk_id: str, plan_id: str, cycle: str) -> dict[str, Any]:
    event = asaas_subscription_event(event_type, subscription, external_reference=f"{clerk_id}|plan:{plan_id}")
    event["subscription"]["cycle"] = cycle
    return event


def _paid(subscription: str, due_date: str | None, next_due_date: str | None = None) -> dict[str, Any]:
    event = asaas_payment_event("PAYMENT_RECEIVED", f"pay_{secrets.token_hex(6)}", subscription=subscription)
    event["payment"]["dueDate"] = due_date
    if next_due_date is not None:
        event["payment"]["nextDueDate"] = next_due_date
    return event


def _plan_lots(engine: Engine, user_id: str) -> list[tuple[Any, ...]]:
    return rows(
        engine,
        """SELECT category, "effectiveAt", "periodEnd", "expiresAt" FROM "CreditLot"
            WHERE "userId" = :u AND category IN ('plan', 'rollover') AND "expiredAt" IS NULL ORDER BY "createdAt" """,
        u=user_id,
    )


def _at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day)


def test_a_known_cycle_sets_the_period_end(engine: Engine, worker: object, receiver_url: str) -> None:
    user_id, clerk_id = make_user(engine, 0)
    plan_id = make_plan(engine, CREDITS)
    subscription, created = _subscription(clerk_id, plan_id, "YEARLY")
    deliver_asaas(receiver_url, created)
    settle(engine, 1)
    deliver_asaas(receiver_url, _paid(subscription, "2099-03-15"))
    settle(engine, 2)

    assert _plan_lots(engine, user_id) == [("plan", _at("2099-03-15"), _at("2100-03-15"), _at("2100-03-15") + GRACE)]
    assert_balance_matches_ledger(engine, user_id, 0)


def test_an_unknown_cycle_counts_as_monthly_until_the_subscription_event_corrects_the_live_lot(
    engine: Engine, worker: object, receiver_url: str
) -> None:
    user_id, clerk_id = make_user(engine, 0)
    plan_id = make_plan(engine, CREDITS)
    subscription = f"sub_{secrets.token_hex(5)}"
    payment = _paid(subscription, "2099-01-31")
    payment["payment"]["externalReference"] = f"{clerk_id}|plan:{plan_id}"
    deliver_asaas(receiver_url, payment)
    settle(engine, 1)
    assert _plan_lots(engine, user_id) == [("plan", _at("2099-01-31"), _at("2099-02-28"), _at("2099-02-28") + GRACE)]

    deliver_asaas(receiver_url, _cycle_event("SUBSCRIPTION_UPDATED", subscription, clerk_id, plan_id, "QUARTERLY"))
    settle(engine, 2)
    assert _plan_lots(engine, user_id) == [("plan", _at("2099-01-31"), _at("2099-04-30"), _at("2099-04-30") + GRACE)]

    # Known now: a later cycle change leaves the period already paid as it was.
    deliver_asaas(receiver_url, _cycle_event("SUBSCRIPTION_UPDATED", subscription, clerk_id, plan_id, "YEARLY"))
    settle(engine, 3)
    assert _plan_lots(engine, user_id) == [("plan", _at("2099-01-31"), _at("2099-04-30"), _at("2099-04-30") + GRACE)]
    assert_balance_matches_ledger(engine, user_id, 0)


def test_next_due_date_counts_only_without_a_due_date(engine: Engine, worker: object, receiver_url: str) -> None:
    user_id, clerk_id = make_user(engine, 0)
    plan_id = make_plan(engine, CREDITS)
    subscription, created = _subscription(clerk_id, plan_id, "WEEKLY")
    deliver_asaas(receiver_url, created)
    settle(engine, 1)
    deliver_asaas(receiver_url, _paid(subscription, "2099-05-01", next_due_date="2099-06-01"))
    deliver_asaas(receiver_url, _paid(subscription, None, next_due_date="2099-05-08"))
    settle(engine, 3)

    assert [(start, end) for category, start, end, _ in _plan_lots(engine, user_id) if category == "plan"] == [
        (_at("2099-05-01"), _at("2099-05-08")),
        (_at("2099-05-08"), _at("2099-05-15")),
    ]
    assert_balance_matches_ledger(engine, user_id, 0)
