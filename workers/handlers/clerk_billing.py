"""Clerk Billing events: plan credits once per subscription item and billing period, every change logged.

Grant key `clerk:subscription_item:<item id>:<period_start>`. An item is granted when it is `active`:
Clerk makes a paid item active only once its period is paid (a failed renewal makes it `past_due`), and a
renewal arrives as `subscriptionItem.updated` with a new `period_start`. A `paymentAttempt` with status
`paid` grants its items too, under the same keys, so whichever event comes first grants and the rest are
no-ops. Subscription events may carry their items; active ones are granted the same way.

A free trial (`is_free_trial`: an `active` item whose period nobody paid, announced again by
`subscriptionItem.freeTrialEnding`) grants nothing, or `CLERK_TRIAL_CREDITS` once per item
(`clerk:trial:<item id>`); the first paid period after it is granted as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from models import billing_links, ledger, subscription_log
from models.billing_links import Payer, PlanRef
from models.inbox import LockedEvent
from models.ledger import CreditFact
from models.status import Failure
from workers.handlers.clerk_payloads import (
    ClerkEnvelope,
    ClerkPayer,
    ClerkPaymentAttempt,
    ClerkSubscription,
    ClerkSubscriptionItem,
)
from workers.handlers.periods import clerk_period
from workers.processing.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

SUBSCRIPTION_EVENTS = (
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.pastDue",
    "subscription.past_due",
)
ITEM_EVENTS = tuple(
    f"subscriptionItem.{name}"
    for name in (
        "created",
        "active",
        "updated",
        "canceled",
        "ended",
        "pastDue",
        "past_due",
        "upcoming",
        "abandoned",
        "incomplete",
        "freeTrialEnding",
    )
)
PAYMENT_ATTEMPT_EVENTS = ("paymentAttempt.created", "paymentAttempt.updated")
NOT_BILLABLE = {"upcoming", "abandoned", "incomplete", "ended", "expired"}


def normalize_status(status: str | None, event_type: str) -> str:
    """`pastDue`/`past_due` → `past_due`; otherwise Clerk's status, else the event's verb."""
    raw = status or event_type.rsplit(".", 1)[-1]
    return {"pastdue": "past_due", "past_due": "past_due", "cancelled": "canceled"}.get(raw.lower(), raw.lower())


def _payer(session: Session, *candidates: ClerkPayer | None) -> Payer:
    user_id = next((payer.user_id for payer in candidates if payer is not None and payer.user_id), None)
    if not user_id:
        raise PermanentError(Failure.UNSUPPORTED_PAYER, "billing event without payer.user_id (organization payers)")
    payer = billing_links.find_user(session, user_id)
    if payer is None:
        # user.created is usually a moment behind: retry with backoff; `dead` (replayable) if it never comes.
        raise TransientError(Failure.PAYER_NOT_SYNCED, "the payer's Clerk user is not synced yet")
    return payer


def _grant_item(
    session: Session, event: LockedEvent, context: HandlerContext, payer: Payer, item: ClerkSubscriptionItem
) -> str | None:
    """Grant one item's period once; returns the plan key (Plan.id, else Clerk's slug or id)."""
    clerk_plan_id, slug = item.plan_ids
    plan = billing_links.find_clerk_plan(session, clerk_plan_id, slug)
    plan_key = plan.key if plan else slug or clerk_plan_id
    if item.is_free_trial:
        _grant_trial(session, event, context, payer, item, plan)
        return plan_key
    if plan is None:
        if item.free or (item.status or "").lower() != "active":
            return plan_key
        raise PermanentError(Failure.UNLINKED_PLAN, "no Plan with this Clerk plan id or slug; add it and replay")
    if plan.credits <= 0:
        return plan_key
    if item.period_start is None:
        raise PermanentError(Failure.INVALID_PAYLOAD, "active subscription item without period_start")
    details = {"kind": "plan_grant", "periodStart": item.period_start, "planId": plan.id}
    ledger.grant_once(
        session,
        _fact(event, payer, item, details),
        key=f"clerk:subscription_item:{item.id}:{item.period_start}",
        plan_id=plan.id,
        amount=plan.credits,
        terms=ledger.LotTerms(context.settings.plan_credits_grace, context.settings.plan_rollover),
        period=clerk_period(item.period_start, item.period_end),
    )
    return plan_key


def _grant_trial(
    session: Session,
    event: LockedEvent,
    context: HandlerContext,
    payer: Payer,
    item: ClerkSubscriptionItem,
    plan: PlanRef | None,
) -> None:
    credits = context.settings.clerk_trial_credits
    if credits <= 0:
        return
    fact = _fact(event, payer, item, {"kind": "trial_grant"})
    trial = clerk_period(item.period_start, item.period_end)  # the trial's period; none: the lot never expires
    ledger.grant_once(session, fact, key=f"clerk:trial:{item.id}", plan_id=plan.id if plan else None, amount=credits,
                      terms=ledger.LotTerms(context.settings.plan_credits_grace), period=trial)  # fmt: skip


def _fact(event: LockedEvent, payer: Payer, item: ClerkSubscriptionItem, details: dict[str, Any]) -> CreditFact:
    """A credit fact of one subscription item, for the payer, caused by this event."""
    described = {"provider": "clerk", "subscriptionItemId": item.id, "eventId": event.eventId}
    return CreditFact(payer.user_id, payer.clerk_id, event.id, {**details, **described, "eventType": event.eventType})


def _plan_key(session: Session, item: ClerkSubscriptionItem) -> str | None:
    """`Plan.id` when the item's plan is configured, else Clerk's slug or plan id (logged, never granted)."""
    clerk_plan_id, slug = item.plan_ids
    plan = billing_links.find_clerk_plan(session, clerk_plan_id, slug)
    return plan.key if plan else slug or clerk_plan_id


def _billable(item: ClerkSubscriptionItem, paid: bool) -> bool:
    status = (item.status or "").lower()
    return status == "active" or (paid and status not in NOT_BILLABLE)


def _log(
    session: Session, event: LockedEvent, payer: Payer, plan_key: str | None, status: str, ids: dict[str, Any]
) -> None:
    subscription_log.record(
        session,
        clerk_user_id=payer.clerk_id,
        user_id=payer.user_id,
        plan_key=plan_key,
        status=status,
        event_type=event.eventType,
        occurred_at=event.occurredAt,
        metadata={"provider": "clerk", "eventId": event.eventId, **ids},
    )


def subscription_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    subscription = ClerkSubscription.model_validate(ClerkEnvelope.model_validate(event.payload).data)
    payer = _payer(session, subscription.payer, *(item.payer for item in subscription.items))
    plan_keys = [
        _grant_item(session, event, context, payer, item) for item in subscription.items if _billable(item, False)
    ]
    status = normalize_status(subscription.status, event.eventType)
    if event.eventType.endswith(("pastDue", "past_due")):
        status = "past_due"
    _log(
        session,
        event,
        payer,
        next((key for key in plan_keys if key), None),
        status,
        {"subscriptionId": subscription.id},
    )


def subscription_item_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    item = ClerkSubscriptionItem.model_validate(ClerkEnvelope.model_validate(event.payload).data)
    payer = _payer(session, item.payer)
    billable = _billable(item, False)
    plan_key = _grant_item(session, event, context, payer, item) if billable else _plan_key(session, item)
    _log(
        session,
        event,
        payer,
        plan_key,
        normalize_status(item.status, event.eventType),
        {"subscriptionItemId": item.id, "periodStart": item.period_start},
    )


def payment_attempt_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    attempt = ClerkPaymentAttempt.model_validate(ClerkEnvelope.model_validate(event.payload).data)
    payer = _payer(session, attempt.payer, *(item.payer for item in attempt.subscription_items))
    paid = (attempt.status or "").lower() == "paid"
    plan_keys = [
        _grant_item(session, event, context, payer, item)
        for item in attempt.subscription_items
        if paid and _billable(item, True)
    ]
    plan_key = next((key for key in plan_keys if key), None)
    if plan_key is None and attempt.subscription_items:  # failed or pending: the plan it was for, first item's
        plan_key = _plan_key(session, attempt.subscription_items[0])
    _log(
        session,
        event,
        payer,
        plan_key,
        f"payment_{(attempt.status or 'unknown').lower()}",
        {"paymentAttemptId": attempt.id, "chargeType": attempt.charge_type},
    )
