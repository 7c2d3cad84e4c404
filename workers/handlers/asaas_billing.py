"""Asaas payment events: plan credits granted once per paid payment, reversed once; one handler per group.

Card and boleto send `PAYMENT_CONFIRMED` and `PAYMENT_RECEIVED` (different event ids) for one payment, Pix
only `PAYMENT_RECEIVED`: the first of them grants under `asaas:payment:<payment id>`; the other finds the
key taken. Subscription charges are created 40 days ahead, so `PAYMENT_CREATED` never grants (it is not
registered at all). Every state change is logged in `SubscriptionEvent`.

`PAYMENT_DELETED` reverses like a refund but under a key of its own, so that `PAYMENT_RESTORED` can cancel
it (see `models.ledger.restores`): a deleted charge that is restored and then paid grants once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from models import ledger
from models.billing_links import Payer, PlanRef
from models.inbox import LockedEvent
from models.ledger import CreditFact
from models.status import Failure
from workers.handlers import asaas_checkout
from workers.handlers.asaas_charges import Charge, charge_for, refunded_fraction, share
from workers.handlers.asaas_links import log_state, resolve_payer
from workers.handlers.asaas_payloads import AsaasPayment, AsaasPaymentEnvelope
from workers.handlers.periods import asaas_period
from workers.processing.errors import PermanentError

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
DISPUTE_OPENED = "PAYMENT_CHARGEBACK_DISPUTE"
LOGGED_ONLY = {"PAYMENT_OVERDUE", DISPUTE_OPENED}  # states that move no credits
AFTER_GRANT = REFUNDS | {CHARGEBACK, DISPUTE_WON, DELETION, RESTORE, PARTIAL_REVERSAL, DISPUTE_OPENED}
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


def _positive_value(payment: AsaasPayment) -> None:
    if payment.value is None or payment.value <= 0:
        raise PermanentError(Failure.INVALID_PAYLOAD, f"payment {payment.id}: payment.value must be a positive amount")


def _deletable(charge: Charge, payment: AsaasPayment) -> str:
    """The grant a deletion or restore acts on: the charge's own (one installment acts on its payment only)."""
    return f"asaas:payment:{payment.id}" if charge.installment else charge.grant_key


@dataclass
class _PaymentEvent:
    """What every payment event group works from: the payment, its charge, who it is for, and the log's fields."""

    event: LockedEvent
    payment: AsaasPayment
    charge: Charge
    payer: Payer
    plan: PlanRef | None
    fact: CreditFact  # user, source event and the ledger rows' details
    metadata: dict[str, Any]
    terms: ledger.LotTerms  # grace, rollover and shortfall rule of the lots it touches

    @property
    def pending_base(self) -> int:
        return self.plan.credits if self.plan else 0

    def reversed(self, change: ledger.CreditChange) -> None:
        self.metadata.update(
            reversed=-change.added, shortfall=change.shortfall or None, beforeGrant=change.before_grant
        )


def _payment_event(session: Session, event: LockedEvent, context: HandlerContext) -> _PaymentEvent:
    payment = AsaasPaymentEnvelope.model_validate(event.payload).payment
    via_checkout = asaas_checkout.charge_via_checkout(session, event, payment, event.eventType in AFTER_GRANT)
    charge = via_checkout.charge if via_checkout else charge_for(session, payment, event.eventType in AFTER_GRANT)
    reference = payment.externalReference or (via_checkout.reference if via_checkout else None)
    after_grant = event.eventType in AFTER_GRANT
    keys = tuple(dict.fromkeys((charge.grant_key, _deletable(charge, payment)))) if after_grant else ()
    where = f"payment {payment.id}"
    links = (reference, payment.subscription, payment.paymentLink)
    payer, plan = resolve_payer(session, context, where, *links, keys)
    metadata: dict[str, Any] = {"paymentId": payment.id, "subscriptionId": payment.subscription}
    metadata["billingType"] = payment.billingType
    if payment.installment:
        metadata.update(installmentId=payment.installment, installmentNumber=payment.installmentNumber)
    settings = context.settings
    terms = ledger.LotTerms(
        settings.plan_credits_grace, settings.plan_rollover, settings.reversal_shortfall == "forgive"
    )
    fact = CreditFact(payer.user_id, payer.clerk_id, event.id, _details(event, payment, plan))
    return _PaymentEvent(event, payment, charge, payer, plan, fact, metadata, terms)


def _logged(session: Session, paid: _PaymentEvent) -> None:
    status = PAYMENT_STATUS.get(paid.event.eventType, "updated")
    log_state(session, paid.event, paid.payer, paid.plan, status, paid.metadata)


def payment_granted(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Confirmed or received: grant the plan's credits once per purchase (and a won dispute it reports)."""
    paid = _payment_event(session, event, context)
    _positive_value(paid.payment)
    if paid.plan is None:
        raise PermanentError(Failure.UNLINKED_PLAN, "the payment links to no plan; fix the link and replay")
    share(session, context, paid.charge, paid.payment, paid.payer.user_id)
    plan, payment = paid.plan, paid.payment
    change = ledger.grant_once(
        session,
        paid.fact,
        key=paid.charge.grant_key,
        plan_id=plan.id,
        amount=plan.credits,
        terms=paid.terms,
        period=asaas_period(payment.dueDate, None) if payment.subscription else None,
    )
    paid.metadata["granted"] = change.added if change.applied else 0
    chargeback = paid.payment.chargeback
    if chargeback and (chargeback.status or "").upper() == "REVERSED":
        _give_back_chargeback(session, paid)
    _logged(session, paid)


def payment_deleted(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """A deleted charge: reverse what it granted, under a key a later restore can cancel."""
    paid = _payment_event(session, event, context)
    fact = paid.fact.described(kind="plan_reversal")
    grant_key = _deletable(paid.charge, paid.payment)
    change = ledger.reverse_deletion_once(session, fact, grant_key=grant_key, event_key=event.eventId, terms=paid.terms)
    paid.reversed(change)
    _logged(session, paid)


def payment_restored(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """A restored charge: cancel one deletion (lift its tombstone, or give back what it removed)."""
    paid = _payment_event(session, event, context)
    fact = paid.fact.described(kind="plan_restore")
    grant_key = _deletable(paid.charge, paid.payment)
    restored = ledger.restore_once(session, fact, grant_key=grant_key, event_key=event.eventId)
    paid.metadata.update(
        liftedTombstone=restored.lifted, restoredCredits=restored.added, beforeDeletion=restored.pending
    )
    _logged(session, paid)


def payment_refunded(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Refunded (or a cash receipt undone): reverse the payment's share of its grant, once."""
    paid = _payment_event(session, event, context)
    fraction = share(session, context, paid.charge, paid.payment, paid.payer.user_id)
    charge = paid.charge
    change = ledger.reverse_once(
        session,
        paid.fact.described(kind="plan_reversal"),
        grant_key=charge.grant_key,
        reversal_key=charge.full_reversal_key,
        fraction=fraction,
        charge_prefix=charge.charge_prefix,
        pending_base=paid.pending_base if charge.installment else None,
        terms=paid.terms,
    )
    paid.reversed(change)
    _logged(session, paid)


def payment_partially_refunded(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Partly refunded: reverse the refunded part of the payment's share (cumulative over its refunds)."""
    paid = _payment_event(session, event, context)
    fraction = share(session, context, paid.charge, paid.payment, paid.payer.user_id)
    _positive_value(paid.payment)
    if paid.payment.refunded_value() < 0:
        raise PermanentError(Failure.INVALID_PAYLOAD, f"payment {paid.payment.id}: a refund value is negative")
    charge = paid.charge
    change = ledger.reverse_once(
        session,
        paid.fact.described(kind="plan_reversal"),
        grant_key=charge.grant_key,
        reversal_key=charge.partial_key(event.eventId),
        fraction=fraction * refunded_fraction(paid.payment),
        charge_prefix=charge.charge_prefix,
        pending_base=paid.pending_base,
        terms=paid.terms,
    )
    paid.reversed(change)
    _logged(session, paid)


def payment_charged_back(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """A chargeback: reverse the payment's share once, unless its dispute was already won."""
    paid = _payment_event(session, event, context)
    fraction = share(session, context, paid.charge, paid.payment, paid.payer.user_id)
    change = ledger.reverse_chargeback(
        session,
        paid.fact.described(kind="plan_reversal"),
        grant_key=paid.charge.grant_key,
        charge_prefix=paid.charge.charge_prefix,
        fraction=fraction,
        pending_base=paid.pending_base,
        terms=paid.terms,
    )
    paid.reversed(change)
    _logged(session, paid)


def payment_dispute_won(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """The chargeback's dispute was won: give back what the chargeback removed, once."""
    paid = _payment_event(session, event, context)
    _give_back_chargeback(session, paid)
    _logged(session, paid)


def payment_logged(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """A state that moves no credits (overdue, a dispute opened): logged only."""
    _logged(session, _payment_event(session, event, context))


def _give_back_chargeback(session: Session, paid: _PaymentEvent) -> None:
    won = ledger.chargeback_won(
        session,
        paid.fact.described(kind="chargeback_won"),
        grant_key=paid.charge.grant_key,
        charge_prefix=paid.charge.charge_prefix,
    )
    paid.metadata.update(chargebackWon=won.note or None, restoredCredits=won.added)
