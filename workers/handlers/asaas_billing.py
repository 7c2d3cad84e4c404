"""Asaas payment and subscription events: plan credits granted once per paid payment, reversed once.

Card and boleto send `PAYMENT_CONFIRMED` and `PAYMENT_RECEIVED` (different event ids) for one payment, Pix
only `PAYMENT_RECEIVED`: the first of them grants under `asaas:payment:<payment id>`; the other finds the
key taken. Subscription charges are created 40 days ahead, so `PAYMENT_CREATED` never grants (it is not
registered at all). Every state change is logged in `SubscriptionEvent`.

`PAYMENT_DELETED` reverses like a refund but under a key of its own, so that `PAYMENT_RESTORED` can cancel
it (see `models/ledger.py`): a deleted charge that is restored and then paid grants once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from models import billing_links, ledger, subscription_log
from models.billing_links import Payer, PlanRef
from models.inbox import LockedEvent
from workers.handlers import asaas_checkout
from workers.handlers.asaas_charges import Charge, charge_for, refunded_fraction, share
from workers.handlers.asaas_payloads import AsaasPayment, AsaasPaymentEnvelope, AsaasSubscriptionEnvelope
from workers.handlers.periods import asaas_period
from workers.processing.errors import IgnoredByPolicy, PermanentError

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

GRANTING = {"PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"}
REFUNDS = {"PAYMENT_REFUNDED", "PAYMENT_RECEIVED_IN_CASH_UNDONE"}
CHARGEBACK = "PAYMENT_CHARGEBACK_REQUESTED"
DISPUTE_WON = "PAYMENT_AWAITING_CHARGEBACK_REVERSAL"  # Asaas: dispute won, awaiting the acquirer's reversal
DELETION = "PAYMENT_DELETED"  # a full reversal that a later PAYMENT_RESTORED cancels
RESTORE = "PAYMENT_RESTORED"
PARTIAL_REVERSAL = "PAYMENT_PARTIALLY_REFUNDED"
# Events about a payment already granted: their payer may be found through the grant alone.
AFTER_GRANT = REFUNDS | {CHARGEBACK, DISPUTE_WON, DELETION, RESTORE, PARTIAL_REVERSAL, "PAYMENT_CHARGEBACK_DISPUTE"}
PAYMENT_STATUS = {
    "PAYMENT_CONFIRMED": "active",
    "PAYMENT_RECEIVED": "active",
    "PAYMENT_OVERDUE": "past_due",
    "PAYMENT_REFUNDED": "refunded",
    "PAYMENT_PARTIALLY_REFUNDED": "partially_refunded",
    "PAYMENT_CHARGEBACK_REQUESTED": "chargeback",
    "PAYMENT_CHARGEBACK_DISPUTE": "chargeback_dispute",
    "PAYMENT_AWAITING_CHARGEBACK_REVERSAL": "chargeback_won",
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


def _resolve(
    session: Session,
    context: HandlerContext,
    what: str,
    external_reference: str | None,
    subscription_id: str | None,
    link_id: str | None,
    grant_keys: tuple[str, ...] = (),
) -> tuple[Payer, PlanRef | None]:
    """User and plan of a payment or subscription; for events about a granted payment, the user its grant
    was made for, whoever `externalReference` names (a refund cannot debit someone else). None:
    `unlinked_payment`, failed; or, when the payment carries no reference of ours (another product sold
    from the same Asaas account), ignored by `ASAAS_UNLINKED_PAYMENTS=ignore`."""
    payer, plan = billing_links.resolve_asaas(
        session, external_reference=external_reference, subscription_id=subscription_id, payment_link_id=link_id
    )
    granted_to = billing_links.payer_of_grant(session, *grant_keys) if grant_keys else None
    if granted_to is not None:  # the grant's user is the truth for every later event about the payment
        payer = granted_to
    if payer is None:
        detail = f"{what} links to no user (externalReference, subscription link, earlier grant); fix and replay"
        foreign = not billing_links.looks_like_ours(external_reference)
        if foreign and context.settings.asaas_unlinked_payments == "ignore":
            raise IgnoredByPolicy("unlinked_payment", detail + " (no externalReference of ours: ignored by policy)")
        raise PermanentError("unlinked_payment", detail)
    return payer, plan


def _details(event: LockedEvent, payment: AsaasPayment, plan: PlanRef | None) -> dict[str, Any]:
    return {
        "kind": "plan_grant",
        "provider": "asaas",
        "paymentId": payment.id,
        "subscriptionId": payment.subscription,
        "planId": plan.id if plan else None,
        "eventId": event.eventId,
        "eventType": event.eventType,
    }


def _log(
    session: Session, event: LockedEvent, payer: Payer, plan: PlanRef | None, status: str, ids: dict[str, Any]
) -> None:
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


def _positive_value(payment: AsaasPayment) -> None:
    if payment.value is None or payment.value <= 0:
        raise PermanentError("invalid_payload", f"payment {payment.id}: payment.value must be a positive amount")


def _deletable(charge: Charge, payment: AsaasPayment) -> str:
    """The grant a deletion or restore acts on: the charge's own (one installment acts on its payment only)."""
    return f"asaas:payment:{payment.id}" if charge.installment else charge.grant_key


def payment_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Grant, reverse or only log, depending on the event type; one transaction with the inbox mark."""
    payment = AsaasPaymentEnvelope.model_validate(event.payload).payment
    via_checkout = asaas_checkout.charge_via_checkout(session, event, payment, event.eventType in AFTER_GRANT)
    charge = via_checkout.charge if via_checkout else charge_for(session, payment, event.eventType in AFTER_GRANT)
    reference = payment.externalReference or (via_checkout.reference if via_checkout else None)
    after_grant = event.eventType in AFTER_GRANT
    keys = tuple(dict.fromkeys((charge.grant_key, _deletable(charge, payment)))) if after_grant else ()
    payer, plan = _resolve(
        session, context, f"payment {payment.id}", reference, payment.subscription, payment.paymentLink, keys
    )
    metadata: dict[str, Any] = {
        "paymentId": payment.id,
        "subscriptionId": payment.subscription,
        "billingType": payment.billingType,
    }
    if payment.installment:
        metadata.update(installmentId=payment.installment, installmentNumber=payment.installmentNumber)
    who: dict[str, Any] = {"user_id": payer.user_id, "clerk_id": payer.clerk_id, "source_event_id": event.id}
    settings = context.settings
    terms = ledger.LotTerms(
        settings.plan_credits_grace, settings.plan_rollover, settings.reversal_shortfall == "forgive"
    )
    details = _details(event, payment, plan)
    pending_base = plan.credits if plan else 0
    if event.eventType in GRANTING:
        _positive_value(payment)
        if plan is None:
            raise PermanentError("unlinked_plan", "the payment links to no plan; fix the link and replay")
        share(session, context.settings, charge, payment, payer.user_id)
        change = ledger.grant_once(
            session, key=charge.grant_key, plan_id=plan.id, amount=plan.credits,
            details=details, terms=terms,
            period=asaas_period(payment.dueDate, None) if payment.subscription else None, **who,
        )  # fmt: skip
        metadata["granted"] = change.added if change.applied else 0
    elif event.eventType == DELETION:
        change = ledger.reverse_deletion_once(
            session, grant_key=_deletable(charge, payment), event_key=event.eventId,
            details={**details, "kind": "plan_reversal"}, terms=terms, **who,
        )  # fmt: skip
        metadata.update(reversed=-change.added, shortfall=change.shortfall or None, beforeGrant=change.before_grant)
    elif event.eventType == RESTORE:
        restored = ledger.restore_once(
            session, grant_key=_deletable(charge, payment), event_key=event.eventId,
            details={**details, "kind": "plan_restore"}, **who,
        )  # fmt: skip
        metadata.update(
            liftedTombstone=restored.lifted, restoredCredits=restored.added, beforeDeletion=restored.pending
        )
    elif event.eventType in REFUNDS | {CHARGEBACK, PARTIAL_REVERSAL}:
        fraction = share(session, context.settings, charge, payment, payer.user_id)
        reversal: dict[str, Any] = {
            "grant_key": charge.grant_key,
            "details": {**details, "kind": "plan_reversal"},
            "terms": terms,
            **who,
        }
        if event.eventType == PARTIAL_REVERSAL:
            _positive_value(payment)
            if payment.refunded_value() < 0:
                raise PermanentError("invalid_payload", f"payment {payment.id}: a refund value is negative")
            change = ledger.reverse_once(
                session, reversal_key=charge.partial_key(event.eventId), fraction=fraction * refunded_fraction(payment),
                charge_prefix=charge.charge_prefix, pending_base=pending_base, **reversal,
            )  # fmt: skip
        elif event.eventType == CHARGEBACK:
            change = ledger.reverse_chargeback(
                session, charge_prefix=charge.charge_prefix, fraction=fraction, pending_base=pending_base, **reversal
            )
        else:
            change = ledger.reverse_once(
                session, reversal_key=charge.full_reversal_key, fraction=fraction, charge_prefix=charge.charge_prefix,
                pending_base=pending_base if charge.installment else None, **reversal,
            )  # fmt: skip
        metadata.update(reversed=-change.added, shortfall=change.shortfall or None, beforeGrant=change.before_grant)
    chargeback_status = (payment.chargeback.status or "").upper() if payment.chargeback else ""
    if event.eventType == DISPUTE_WON or (event.eventType in GRANTING and chargeback_status == "REVERSED"):
        won = ledger.chargeback_won(
            session, grant_key=charge.grant_key, charge_prefix=charge.charge_prefix,
            details={**details, "kind": "chargeback_won"}, **who,
        )  # fmt: skip
        metadata.update(chargebackWon=won.note or None, restoredCredits=won.added)
    _log(session, event, payer, plan, PAYMENT_STATUS.get(event.eventType, "updated"), metadata)


def subscription_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Remember subscription → user/plan for its payments, and log the state change."""
    subscription = AsaasSubscriptionEnvelope.model_validate(event.payload).subscription
    payer, plan = _resolve(
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
    _log(session, event, payer, plan, status, {"subscriptionId": subscription.id, "cycle": subscription.cycle})
