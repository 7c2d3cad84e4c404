"""Asaas Checkout: a purchase made on an Asaas-hosted checkout page grants its plan once.

The web app creates the checkout with its reference (`checkout.externalReference`: `<user>|plan:<plan>`);
Asaas then sends `CHECKOUT_*` events for the checkout and, for the charge it creates, payment events with
`externalReference: null` and `checkoutSession` naming the checkout. Either may arrive first, or alone.

- `CHECKOUT_CREATED` / `CHECKOUT_PAID` store checkout → reference, user, plan (`models.checkout_links`).
- A one-off checkout (`DETACHED`, `INSTALLMENT`) grants under one key per checkout, `asaas:checkout:<id>`:
  `CHECKOUT_PAID` and the charge's `PAYMENT_CONFIRMED`/`RECEIVED` both grant it, so whichever comes first
  grants and the others find the key taken. Refunds and chargebacks of the charge reverse that grant (its
  reversal keys sit under the checkout key, found through `checkoutSession`).
- A recurrent checkout (`RECURRENT`) creates an Asaas subscription: its charges carry `subscription` and
  are periods, granted per payment like every subscription payment; `CHECKOUT_PAID` grants nothing itself
  (that would grant the first period twice) and the first charge links the subscription to the user and plan.
- A charge processed before its checkout is linked waits (`ignored`, `checkout_pending`); the checkout event
  that links it applies it in its own transaction and marks it `processed`: no operator step.
- `CHECKOUT_CREATED` / `CANCELED` / `EXPIRED` move no credits: logged, and `ignored` with `checkout_no_credits`
  (unless they applied a waiting charge). A checkout with no reference of ours follows `ASAAS_UNLINKED_PAYMENTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from models import billing_links, checkout_links, inbox, ledger
from models.billing_links import Payer, PlanRef
from models.checkout_links import CheckoutLink
from models.inbox import LockedEvent
from models.ledger import CreditFact
from models.status import EventStatus, Failure
from workers.handlers.asaas_charges import Charge, charge_for
from workers.handlers.asaas_links import log_state, unlinked
from workers.handlers.asaas_payloads import AsaasCheckout, AsaasCheckoutEnvelope, AsaasPayment
from workers.processing.errors import IgnoredByPolicy, PermanentError

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

PAID = "CHECKOUT_PAID"
CHECKOUT_STATUS = {
    "CHECKOUT_CREATED": "checkout_created",
    PAID: "checkout_paid",
    "CHECKOUT_CANCELED": "checkout_canceled",
    "CHECKOUT_EXPIRED": "checkout_expired",
}
CHECKOUT_EVENTS = tuple(CHECKOUT_STATUS)


def grant_key(checkout_id: str) -> str:
    return f"asaas:checkout:{checkout_id}"


@dataclass(frozen=True)
class ViaCheckout:
    """How a checkout's charge is applied: the checkout's reference, and the grant its keys belong to."""

    reference: str | None
    charge: Charge


def charge_via_checkout(
    session: Session, event: LockedEvent, payment: AsaasPayment, after_grant: bool
) -> ViaCheckout | None:
    """None for a charge of no checkout. A charge whose checkout is not linked yet waits for it (see above)."""
    if not payment.checkoutSession:
        return None
    link = checkout_links.link_or_wait(session, payment.checkoutSession, event.id)
    if link is None:
        raise IgnoredByPolicy(
            Failure.CHECKOUT_PENDING,
            f"payment {payment.id} belongs to checkout {payment.checkoutSession}, whose CHECKOUT_CREATED or "
            "CHECKOUT_PAID has not been processed yet; that event applies it (no replay needed)",
        )
    if payment.subscription:  # a period of the subscription a recurrent checkout created
        _link_subscription(session, event, payment, link)
        return ViaCheckout(link.external_reference, charge_for(session, payment, after_grant))
    key = grant_key(link.checkout_id)
    if payment.installment:
        return ViaCheckout(link.external_reference, Charge(key, f"{key}{ledger.REVERSAL_SUFFIX}:{payment.id}:", True))
    return ViaCheckout(link.external_reference, Charge(key, key + ledger.REVERSAL_SUFFIX, False))


def _link_subscription(session: Session, event: LockedEvent, payment: AsaasPayment, link: CheckoutLink) -> None:
    """Remember the subscription → user/plan (its later periods may not name the checkout)."""
    if link.subscription_id == payment.subscription or payment.subscription is None:
        return
    payer, plan = billing_links.resolve_asaas(session, external_reference=link.external_reference, subscription_id=None)
    if payer is None:
        return
    billing_links.remember_asaas_subscription(
        session,
        subscription_id=payment.subscription,
        payer=payer,
        plan=plan,
        customer_id=payment.customer,
        external_reference=link.external_reference,
        source_event_id=event.id,
    )
    checkout_links.link_subscription(session, link.checkout_id, payment.subscription)


def _resolve(session: Session, context: HandlerContext, checkout: AsaasCheckout) -> tuple[Payer, PlanRef | None, str]:
    """User, plan and reference: the event's `externalReference`, else the one an earlier checkout event stored."""
    reference = checkout.externalReference
    payer, plan = billing_links.resolve_asaas(session, external_reference=reference, subscription_id=None)
    if payer is None:
        stored = checkout_links.find(session, checkout.id)
        if stored is not None and stored.external_reference:
            reference = stored.external_reference
            payer, plan = billing_links.resolve_asaas(session, external_reference=reference, subscription_id=None)
    if payer is None or reference is None:
        unlinked(context, f"checkout {checkout.id} links to no user (checkout.externalReference)", reference)
    return payer, plan, reference


def checkout_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Link the checkout; on `CHECKOUT_PAID` of a one-off checkout, grant its plan once; apply waiting charges."""
    checkout = AsaasCheckoutEnvelope.model_validate(event.payload).checkout
    payer, plan, reference = _resolve(session, context, checkout)
    created_subscription = checkout.subscription.id if checkout.subscription else None
    link, waiting = checkout_links.remember(
        session,
        checkout_id=checkout.id,
        user_id=payer.user_id,
        plan_id=plan.id if plan else None,
        external_reference=reference,
        charge_type=checkout.charge_type,
        subscription_id=created_subscription,
        status=checkout.status,
        source_event_id=event.id,
    )
    metadata: dict[str, object] = {"checkoutId": checkout.id, "chargeType": link.charge_type}
    if event.eventType == PAID and link.recurrent:
        if created_subscription:
            billing_links.remember_asaas_subscription(
                session,
                subscription_id=created_subscription,
                payer=payer,
                plan=plan,
                customer_id=checkout.customer,
                external_reference=reference,
                source_event_id=event.id,
            )
        metadata["subscriptionId"] = link.subscription_id
    elif event.eventType == PAID:
        if plan is None:
            detail = f"checkout {checkout.id} links to no plan ('|plan:'); fix and replay"
            raise PermanentError(Failure.UNLINKED_PLAN, detail)
        details = {"kind": "plan_grant", "provider": "asaas", "checkoutId": checkout.id, "planId": plan.id}
        details.update(eventId=event.eventId, eventType=event.eventType)
        fact = CreditFact(payer.user_id, payer.clerk_id, event.id, details)
        change = ledger.grant_once(session, fact, key=grant_key(checkout.id), plan_id=plan.id, amount=plan.credits)
        metadata["granted"] = change.added if change.applied else 0
    applied = _apply_waiting(session, context, waiting)
    metadata["appliedCharges"] = applied or None
    log_state(session, event, payer, plan, CHECKOUT_STATUS.get(event.eventType, "updated"), metadata)
    if event.eventType != PAID and not applied:
        raise IgnoredByPolicy(
            Failure.CHECKOUT_NO_CREDITS,
            f"{event.eventType} moves no credits (checkout {checkout.id} is linked and logged); "
            "credits move when it is paid (CHECKOUT_PAID or its charge's PAYMENT_CONFIRMED/RECEIVED)",
        )


def _apply_waiting(session: Session, context: HandlerContext, row_ids: list[str]) -> list[str]:
    """Apply the charges that waited for this checkout, each through its own handler, and mark them processed.
    A row another transaction holds (a replay in flight) or that is no longer waiting is left to itself."""
    from workers.handlers import HANDLERS  # the registry imports this module

    applied = []
    for row_id in row_ids:
        waiting = inbox.lock_if_free(session, row_id)
        if waiting is None or waiting.status != EventStatus.IGNORED or waiting.payload is None:
            continue
        handler = HANDLERS.get((waiting.provider, waiting.eventType))
        if handler is None:
            continue
        try:
            handler(session, waiting, context)
        except IgnoredByPolicy as error:  # nothing of this transaction may commit half-applied
            raise PermanentError(error.code, f"a charge of this checkout: {error.detail}") from error
        inbox.finish(session, waiting, EventStatus.PROCESSED)
        applied.append(waiting.eventId)
    return applied
