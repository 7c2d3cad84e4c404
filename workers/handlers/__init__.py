"""The handler registry: one plain function per (provider, event type), all listed in one table.

A handler is `handler(session, event, context)`: it reads `event.payload`, writes effects through the
`models` data-access modules inside the caller's transaction, and raises `PermanentError` for input it
cannot apply. Unknown types are not in the table and end `ignored`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ingest.config.settings import Settings
from models.inbox import LockedEvent
from models.inbox.reserved import SYNC_PROVIDER
from workers.handlers import asaas_billing, asaas_checkout, asaas_subscriptions, asaas_sync, clerk_billing, clerk_users


@dataclass(frozen=True)
class HandlerContext:
    settings: Settings
    lookups: Mapping[str, object] = field(default_factory=dict)  # provider values read before this attempt


Handler = Callable[[Session, LockedEvent, HandlerContext], None]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("clerk", "user.created"): clerk_users.user_upserted,
    ("clerk", "user.updated"): clerk_users.user_upserted,
    ("clerk", "user.deleted"): clerk_users.user_deleted,
    # Billing. Asaas `PAYMENT_CREATED` is deliberately absent (charges are created 40 days ahead): ignored.
    **{("asaas", name): asaas_billing.payment_granted for name in sorted(asaas_billing.GRANTING)},
    **{("asaas", name): asaas_billing.payment_refunded for name in sorted(asaas_billing.REFUNDS)},
    ("asaas", asaas_billing.PARTIAL_REVERSAL): asaas_billing.payment_partially_refunded,
    ("asaas", asaas_billing.CHARGEBACK): asaas_billing.payment_charged_back,
    ("asaas", asaas_billing.DISPUTE_WON): asaas_billing.payment_dispute_won,
    ("asaas", asaas_billing.DELETION): asaas_billing.payment_deleted,
    ("asaas", asaas_billing.RESTORE): asaas_billing.payment_restored,
    **{("asaas", name): asaas_billing.payment_logged for name in sorted(asaas_billing.LOGGED_ONLY)},
    **{("asaas", name): asaas_subscriptions.subscription_event for name in asaas_subscriptions.SUBSCRIPTION_EVENTS},
    **{("asaas", name): asaas_checkout.checkout_event for name in asaas_checkout.CHECKOUT_EVENTS},
    **{("clerk", name): clerk_billing.subscription_event for name in clerk_billing.SUBSCRIPTION_EVENTS},
    **{("clerk", name): clerk_billing.subscription_item_event for name in clerk_billing.ITEM_EVENTS},
    **{("clerk", name): clerk_billing.payment_attempt_event for name in clerk_billing.PAYMENT_ATTEMPT_EVENTS},
    # A payment's state read from the Asaas API (backfill): runs the handlers above for the events it implies.
    # Stored under a provider of its own: a wire `PAYMENT_SYNC` (provider `asaas`) reaches no handler.
    (SYNC_PROVIDER, asaas_sync.EVENT_TYPE): asaas_sync.payment_sync_event,
}
