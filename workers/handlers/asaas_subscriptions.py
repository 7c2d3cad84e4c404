"""Asaas subscription events: remember subscription → user/plan for its payments, and log the state change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from models import billing_links
from models.inbox import LockedEvent
from workers.handlers.asaas_links import log_state, resolve_payer
from workers.handlers.asaas_payloads import AsaasSubscriptionEnvelope

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

SUBSCRIPTION_EVENTS = (
    "SUBSCRIPTION_CREATED",
    "SUBSCRIPTION_UPDATED",
    "SUBSCRIPTION_INACTIVATED",
    "SUBSCRIPTION_DELETED",
)
SUBSCRIPTION_STATUS = {"ACTIVE": "active", "INACTIVE": "canceled", "EXPIRED": "ended"}
SUBSCRIPTION_EVENT_STATUS = {"SUBSCRIPTION_INACTIVATED": "canceled", "SUBSCRIPTION_DELETED": "canceled"}


def subscription_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Remember subscription → user/plan for its payments, and log the state change."""
    subscription = AsaasSubscriptionEnvelope.model_validate(event.payload).subscription
    payer, plan = resolve_payer(
        session,
        context,
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
    log_state(session, event, payer, plan, status, {"subscriptionId": subscription.id, "cycle": subscription.cycle})
