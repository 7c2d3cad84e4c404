"""`PAYMENT_SYNC`: a payment's current state, read from the Asaas API, applied as the webhooks it implies.

The backfill never re-implements billing. It maps the payment's status to the webhook event types that
describe it (`RECEIVED` → `PAYMENT_RECEIVED`, `REFUNDED` → `PAYMENT_REFUNDED`, …) and runs the handlers
registered for those types on a synthesized envelope `{"id", "event", "payment"}`, in the transaction of
the `PAYMENT_SYNC` inbox row. So every grant and reversal goes through the webhook path's own keys: a
backfill and a late (or early) webhook can never both grant, and whatever rules the billing handlers
follow, the backfill follows too.

The inbox row's event id is derived from the payment id and the state that matters (status, deleted,
refunded amount): a second backfill of an unchanged payment is a duplicate, a changed payment is a new row.
Its `occurredAt` is the time the API was read: a deletion the backfill saw is a fact of that time, weighed
against the webhooks' deletions and restores by time, not counted beside them (`models/ledger/restores.py`).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from models.inbox import LockedEvent
from models.inbox.reserved import SYNC_EVENT_TYPE
from models.status import Failure
from workers.processing.errors import PermanentError

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

EVENT_TYPE = SYNC_EVENT_TYPE  # stored under provider `asaas-sync`, unreachable from the wire (models.inbox.reserved)
PAID = {"RECEIVED", "RECEIVED_IN_CASH", "DUNNING_RECEIVED", "REFUND_REQUESTED", "REFUND_IN_PROGRESS"}
# Status → the webhook events that bring a payment there, in delivery order. PENDING, OVERDUE, AWAITING_RISK_ANALYSIS
# and DUNNING_REQUESTED move no credits and are left to the webhooks.
IMPLIED: dict[str, tuple[str, ...]] = {
    **{status: ("PAYMENT_RECEIVED",) for status in PAID},
    "CONFIRMED": ("PAYMENT_CONFIRMED",),
    "REFUNDED": ("PAYMENT_REFUNDED",),
    "CHARGEBACK_REQUESTED": ("PAYMENT_CHARGEBACK_REQUESTED",),
    "CHARGEBACK_DISPUTE": ("PAYMENT_CHARGEBACK_REQUESTED", "PAYMENT_CHARGEBACK_DISPUTE"),
    "AWAITING_CHARGEBACK_REVERSAL": ("PAYMENT_CHARGEBACK_REQUESTED", "PAYMENT_AWAITING_CHARGEBACK_REVERSAL"),
}


def refunded_value(payment: dict[str, Any]) -> Decimal:
    """Refunds not cancelled (a `PENDING` refund counts: Asaas reports it once it is requested)."""
    total = Decimal(0)
    for refund in payment.get("refunds") or []:
        if isinstance(refund, dict) and str(refund.get("status") or "").upper() != "CANCELLED":
            try:
                total += Decimal(str(refund.get("value") or 0))
            except InvalidOperation:
                continue
    return total


def implied_events(payment: dict[str, Any]) -> tuple[str, ...]:
    """The webhook event types that describe this payment's current state (empty: nothing to apply)."""
    if payment.get("deleted"):
        return ("PAYMENT_DELETED",)
    status = str(payment.get("status") or "").upper()
    events = IMPLIED.get(status, ())
    if events and status in PAID | {"CONFIRMED"} and refunded_value(payment) > 0:
        events = (*events, "PAYMENT_PARTIALLY_REFUNDED")
    return events


def sync_event_id(payment: dict[str, Any]) -> str:
    """Stable per (payment, state): `payment-sync:<id>:<STATUS>[:deleted][:refunded:<amount>]`."""
    status = str(payment.get("status") or "UNKNOWN").upper()
    parts = ["payment-sync", str(payment["id"]), status]
    if payment.get("deleted"):
        parts.append("deleted")
    refunded = refunded_value(payment)
    if refunded > 0 and status != "REFUNDED":
        parts += ["refunded", f"{refunded:.2f}"]
    return ":".join(parts)


def payment_sync_event(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    """Run the registered webhook handler of every implied event type, in this one transaction."""
    from workers.handlers import HANDLERS  # the registry imports this module

    payload = event.payload if isinstance(event.payload, dict) else {}
    payment = payload.get("payment")
    if not isinstance(payment, dict) or not payment.get("id"):
        raise PermanentError(Failure.INVALID_PAYLOAD, "PAYMENT_SYNC without a payment object that has an id")
    for event_type in implied_events(payment):
        handler = HANDLERS.get(("asaas", event_type))
        if handler is None:
            continue  # a state the billing handlers do not act on (yet): nothing to apply
        envelope: dict[str, Any] = {"id": event.eventId, "event": event_type, "payment": payment}
        if payload.get("installment") is not None:
            envelope["installment"] = payload["installment"]
        handler(session, dataclasses.replace(event, eventType=event_type, payload=envelope), context)
