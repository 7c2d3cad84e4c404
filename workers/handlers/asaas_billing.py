"""Asaas payment and subscription events: plan credits granted once per paid payment, reversed once.

Card and boleto send `PAYMENT_CONFIRMED` and `PAYMENT_RECEIVED` (different event ids) for one payment, Pix
only `PAYMENT_RECEIVED`: the first of them grants under `asaas:payment:<payment id>`; the other finds the
key taken. Subscription charges are created 40 days ahead, so `PAYMENT_CREATED` never grants (it is not
registered at all). Every state change is logged in `SubscriptionEvent`.

`PAYMENT_DELETED` reverses like a refund but under a key of its own, so that `PAYMENT_RESTORED` can cancel
it (see `models/ledger.py`): a deleted charge that is restored and then paid grants once.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from models import billing_links, ledger, subscription_log
from models.billing_links import Payer, PlanRef
from models.inbox import LockedEvent
from workers.errors import PermanentError
from workers.handlers.asaas_payloads import AsaasPayment, AsaasPaymentEnvelope, AsaasSubscriptionEnvelope

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

GRANTING = {"PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"}
FULL_REVERSALS = {
    "PAYMENT_REFUNDED",
    "PAYMENT_CHARGEBACK_REQUESTED",
    "PAYMENT_RECEIVED_IN_CASH_UNDONE",
}
DELETION = "PAYMENT_DELETED"  # a full reversal that a later PAYMENT_RESTORED cancels
RESTORE = "PAYMENT_RESTORED"
PARTIAL_REVERSAL = "PAYMENT_PARTIALLY_REFUNDED"
PAYMENT_STATUS = {
    "PAYMENT_CONFIRMED": "active",
    "PAYMENT_RECEIVED": "active",
    "PAYMENT_OVERDUE": "past_due",
    "PAYMENT_REFUNDED": "refunded",
    "PAYMENT_PARTIALLY_REFUNDED": "partially_refunded",
    "PAYMENT_CHARGEBACK_REQUESTED": "chargeback",
    "PAYMENT_RECEIVED_IN_CASH_UNDONE": "payment_undone",
    "PAYMENT_DELETED": "payment_deleted",
    "PAYMENT_RESTORED": "restored",
}
SUBSCRIPTION_EVENTS = (
    "SUBSCRIPTION_CREATED",
    "SUBSCRIPTION_UPDATED",
    "SUBSCRIPTION_INACTIVATED",
    "SUBSCRIPTION_DELETED",
)
SUBSCRIPTION_STATUS = {"ACTIVE": "active", "INACTIVE": "canceled", "EXPIRED": "ended"}
SUBSCRIPTION_EVENT_STATUS = {"SUBSCRIPTION_INACTIVATED": "canceled", "SUBSCRIPTION_DELETED": "canceled"}


def grant_key(payment_id: str) -> str:
    return f"asaas:payment:{payment_id}"


def _resolve(
    session: Session, what: str, external_reference: str | None, subscription_id: str | None, link_id: str | None
) -> tuple[Payer, PlanRef | None]:
    """User and plan of a payment or subscription, or `unlinked_payment` (replayable once the link exists)."""
    payer, plan = billing_links.resolve_asaas(
        session, external_reference=external_reference, subscription_id=subscription_id, payment_link_id=link_id
    )
    if payer is None:
        raise PermanentError(
            "unlinked_payment", f"{what} links to no user (externalReference, subscription link); fix and replay"
        )
    return payer, plan


def _link(session: Session, payment: AsaasPayment) -> tuple[Payer, PlanRef | None]:
    return _resolve(
        session, f"payment {payment.id}", payment.externalReference, payment.subscription, payment.paymentLink
    )


def _details(event: LockedEvent, payment: AsaasPayment, plan: PlanRef | None) -> dict:
    return {
        "kind": "plan_grant",
        "provider": "asaas",
        "paymentId": payment.id,
        "subscriptionId": payment.subscription,
        "planId": plan.id if plan else None,
        "eventId": event.eventId,
        "eventType": event.eventType,
    }


def _log(session: Session, event: LockedEvent, payer: Payer, plan: PlanRef | None, status: str, ids: dict) -> None:
    subscription_log.record(
        session,
        clerk_user_id=payer.clerk_id,
        user_id=payer.user_id,
        plan_key=plan.key if plan else None,
        status=status,
        event_type=event.eventType,
        occurred_at=event.occurredAt,
        metadata={"provider": "asaas", "eventId": event.eventId, **ids},
    )


def payment_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Grant, reverse or only log, depending on the event type; one transaction with the inbox mark."""
    payment = AsaasPaymentEnvelope.model_validate(event.payload).payment
    payer, plan = _link(session, payment)
    metadata = {"paymentId": payment.id, "subscriptionId": payment.subscription, "billingType": payment.billingType}
    if event.eventType in GRANTING:
        if plan is None:
            raise PermanentError("unlinked_plan", "the payment links to no plan; fix the link and replay")
        change = ledger.grant_once(
            session,
            key=grant_key(payment.id),
            user_id=payer.user_id,
            clerk_id=payer.clerk_id,
            plan_id=plan.id,
            amount=plan.credits,
            policy=context.settings.credit_grant_policy,
            source_event_id=event.id,
            details=_details(event, payment, plan),
        )
        metadata["granted"] = change.added if change.applied else 0
    elif event.eventType == DELETION:
        change = ledger.reverse_deletion_once(
            session,
            grant_key=grant_key(payment.id),
            event_key=event.eventId,
            user_id=payer.user_id,
            clerk_id=payer.clerk_id,
            source_event_id=event.id,
            details={**_details(event, payment, plan), "kind": "plan_reversal"},
        )
        metadata.update(reversed=-change.added, shortfall=change.shortfall or None, beforeGrant=change.before_grant)
    elif event.eventType == RESTORE:
        restored = ledger.restore_once(
            session,
            grant_key=grant_key(payment.id),
            event_key=event.eventId,
            user_id=payer.user_id,
            clerk_id=payer.clerk_id,
            source_event_id=event.id,
            details={**_details(event, payment, plan), "kind": "plan_restore"},
        )
        metadata.update(
            liftedTombstone=restored.lifted, restoredCredits=restored.added, beforeDeletion=restored.pending
        )
    elif event.eventType in FULL_REVERSALS or event.eventType == PARTIAL_REVERSAL:
        fraction = Fraction(1)
        key = grant_key(payment.id) + ledger.REVERSAL_SUFFIX
        if event.eventType == PARTIAL_REVERSAL:
            if not payment.value or payment.value <= 0:
                raise PermanentError("invalid_payload", "partial refund of a payment without a positive value")
            fraction = Fraction(payment.refunded_value()) / Fraction(payment.value)
            key = f"{key}:partial:{event.eventId}"
        change = ledger.reverse_once(
            session,
            grant_key=grant_key(payment.id),
            reversal_key=key,
            user_id=payer.user_id,
            clerk_id=payer.clerk_id,
            fraction=fraction,
            source_event_id=event.id,
            details={**_details(event, payment, plan), "kind": "plan_reversal"},
        )
        metadata.update(reversed=-change.added, shortfall=change.shortfall or None, beforeGrant=change.before_grant)
    _log(session, event, payer, plan, PAYMENT_STATUS.get(event.eventType, "updated"), metadata)


def subscription_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Remember subscription → user/plan for its payments, and log the state change."""
    subscription = AsaasSubscriptionEnvelope.model_validate(event.payload).subscription
    payer, plan = _resolve(
        session,
        f"subscription {subscription.id}",
        subscription.externalReference,
        subscription.id,
        subscription.paymentLink,
    )
    billing_links.remember_asaas_subscription(
        session,
        subscription_id=subscription.id,
        payer=payer,
        plan=plan,
        customer_id=subscription.customer,
        external_reference=subscription.externalReference,
        source_event_id=event.id,
    )
    status = SUBSCRIPTION_EVENT_STATUS.get(event.eventType) or SUBSCRIPTION_STATUS.get(
        (subscription.status or "").upper(), "updated"
    )
    if subscription.deleted:
        status = "canceled"
    _log(session, event, payer, plan, status, {"subscriptionId": subscription.id, "cycle": subscription.cycle})
