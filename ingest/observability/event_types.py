"""The event types a metric label may name; any other value is counted as `other`.

Event types come from provider payloads: an authenticated sender (or a bug on its side) could invent a new
one per delivery, and every distinct label value is a time series kept until restart. Counting only known
types keeps `/metrics` the same size whatever arrives.
"""

from __future__ import annotations

OTHER = "other"

CLERK_TYPES = frozenset(
    {
        "user.created", "user.updated", "user.deleted",
        "session.created", "session.ended", "session.removed", "session.revoked", "email.created", "sms.created",
        "organization.created", "organization.updated", "organization.deleted",
        "subscription.created", "subscription.updated", "subscription.active", "subscription.pastDue",
        "subscription.past_due",
        "subscriptionItem.created", "subscriptionItem.updated", "subscriptionItem.active",
        "subscriptionItem.canceled", "subscriptionItem.ended", "subscriptionItem.abandoned",
        "subscriptionItem.incomplete", "subscriptionItem.pastDue", "subscriptionItem.past_due",
        "subscriptionItem.upcoming", "subscriptionItem.freeTrialEnding",
        "paymentAttempt.created", "paymentAttempt.updated",
    }
)  # fmt: skip

ASAAS_TYPES = frozenset(
    {
        "PAYMENT_CREATED", "PAYMENT_UPDATED", "PAYMENT_CONFIRMED", "PAYMENT_RECEIVED", "PAYMENT_OVERDUE",
        "PAYMENT_DELETED", "PAYMENT_RESTORED", "PAYMENT_REFUNDED", "PAYMENT_PARTIALLY_REFUNDED",
        "PAYMENT_REFUND_IN_PROGRESS", "PAYMENT_RECEIVED_IN_CASH_UNDONE", "PAYMENT_CHARGEBACK_REQUESTED",
        "PAYMENT_CHARGEBACK_DISPUTE", "PAYMENT_AWAITING_CHARGEBACK_REVERSAL", "PAYMENT_DUNNING_RECEIVED",
        "PAYMENT_DUNNING_REQUESTED", "PAYMENT_BANK_SLIP_VIEWED", "PAYMENT_CHECKOUT_VIEWED",
        "PAYMENT_AWAITING_RISK_ANALYSIS", "PAYMENT_APPROVED_BY_RISK_ANALYSIS", "PAYMENT_REPROVED_BY_RISK_ANALYSIS",
        "PAYMENT_AUTHORIZED", "PAYMENT_ANTICIPATED", "PAYMENT_CREDIT_CARD_CAPTURE_REFUSED",
        "SUBSCRIPTION_CREATED", "SUBSCRIPTION_UPDATED", "SUBSCRIPTION_INACTIVATED", "SUBSCRIPTION_DELETED",
        "CHECKOUT_CREATED", "CHECKOUT_PAID", "CHECKOUT_CANCELED", "CHECKOUT_EXPIRED",
        "unparseable", "PAYMENT_SYNC",  # our own: a payment's state read back from the Asaas API
    }
)  # fmt: skip

KNOWN = CLERK_TYPES | ASAAS_TYPES


def event_type_label(value: str | None) -> str:
    """`value` when it is a known event type, else `other`."""
    return value if value in KNOWN else OTHER
