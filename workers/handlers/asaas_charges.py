"""Which grant an Asaas payment belongs to, and what share of it the payment is.

A plain payment is its own purchase: grant `asaas:payment:<id>`, its reversals under
`asaas:payment:<id>:reversal`. A card purchase in installments sends one payment per installment (same
`payment.installment`), and is one purchase: grant `asaas:installment:<installment id>`, each
installment's reversals under `asaas:installment:<id>:reversal:<payment id>:`, worth its share of the
purchase. Webhooks do not carry the purchase total: it is read once from the Asaas API's installment
resource when `ASAAS_API_KEY` is set (kept as `asaas:installment:<id>:total`, amount in cents, not
credits); otherwise it is the sum of the installments seen, each recorded once as
`asaas:installment:<id>:part:<payment id>` (cents). Asaas confirms every installment of a card purchase
together at checkout, so that sum is right unless a refund overtakes the other installments' events.

A payment that names a `subscription` is one period of that subscription even when it also carries
`installment` (Asaas's own `PAYMENT_RECEIVED` example fills both): keyed by installment, every later period
would find the purchase's key taken and grant nothing. Grants recorded under the installment key before
this rule are still found by their reversals (`charge_for`: the payment's key, then the old one).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ingest.config.settings import Settings
from models import ledger
from models.ledger import purchases
from models.status import Failure
from workers.handlers.asaas_payloads import AsaasPayment
from workers.processing.errors import NeedsLookup, TransientError
from workers.providers.asaas_api import AsaasUnauthorized, AsaasUnavailable, installment_total

if TYPE_CHECKING:
    from workers.handlers import HandlerContext


@dataclass(frozen=True)
class Charge:
    grant_key: str
    charge_prefix: str  # every reversal of this payment is keyed under it
    installment: bool

    @property
    def full_reversal_key(self) -> str:
        return self.charge_prefix + "refund" if self.installment else self.charge_prefix

    def partial_key(self, event_key: str) -> str:
        return f"{self.charge_prefix.rstrip(':')}:partial:{event_key}"


def charge_of(payment: AsaasPayment) -> Charge:
    if payment.installment and not payment.subscription:
        return _installment_charge(payment.installment, payment.id)
    key = f"asaas:payment:{payment.id}"
    return Charge(key, key + ledger.REVERSAL_SUFFIX, False)


def _installment_charge(installment: str, payment_id: str) -> Charge:
    key = f"asaas:installment:{installment}"
    return Charge(key, f"{key}{ledger.REVERSAL_SUFFIX}:{payment_id}:", True)


def charge_for(session: Session, payment: AsaasPayment, after_grant: bool) -> Charge:
    """`charge_of`, except that an event about a granted subscription payment that carries `installment` uses
    the installment key when its grant was recorded there (before subscription periods were keyed per payment)."""
    charge = charge_of(payment)
    if not (after_grant and payment.subscription and payment.installment):
        return charge
    if ledger.is_claimed(session, charge.grant_key):
        return charge
    legacy = _installment_charge(payment.installment, payment.id)
    return legacy if ledger.is_claimed(session, legacy.grant_key) else charge


def share(session: Session, context: HandlerContext, charge: Charge, payment: AsaasPayment, user_id: str) -> Fraction:
    """The payment's share of its purchase: 1, or installment value / purchase total (see above).

    The total is read from the Asaas API only when it is not on record yet, and never inside this transaction:
    `NeedsLookup` rolls the attempt back, the worker reads the total, and the attempt runs again with it."""
    if not charge.installment or not payment.value or payment.value <= 0:
        return Fraction(1)
    cents = int(payment.value * 100)
    parts = purchases.record_part(session, charge.grant_key, payment.id, user_id, cents)
    total = purchases.recorded_total(session, charge.grant_key)
    installment = payment.installment
    if total is None and installment and context.settings.asaas_api_key is not None:
        lookup = f"asaas:installment_total:{installment}"
        if lookup not in context.lookups:
            raise NeedsLookup(lookup, lambda settings: _read_total(settings, installment))
        from_api = context.lookups[lookup]
        if isinstance(from_api, Decimal):
            total = int(from_api * 100)
            purchases.record_total(session, charge.grant_key, user_id, total)
    return Fraction(cents, max(parts if total is None else total, cents))


def _read_total(settings: Settings, installment: str) -> Decimal | None:
    try:
        return installment_total(settings, installment)
    except (AsaasUnavailable, AsaasUnauthorized) as error:  # the task retries; the row says why meanwhile
        detail = f"the Asaas API did not give the installment total: {error}"
        raise TransientError(Failure.PROVIDER_UNAVAILABLE, detail) from None


def refunded_fraction(payment: AsaasPayment) -> Fraction:
    """Refunded share of the payment itself (cumulative over its `refunds`)."""
    value = payment.value or Decimal(0)
    return Fraction(payment.refunded_value()) / Fraction(value) if value > 0 else Fraction(0)
