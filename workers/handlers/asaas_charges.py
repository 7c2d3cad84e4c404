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

from sqlalchemy import text
from sqlalchemy.orm import Session

from ingest.config.settings import Settings
from models import ledger
from models.ledger.grants import claim_key
from workers.handlers.asaas_payloads import AsaasPayment
from workers.providers.asaas_api import installment_total

_TOTAL = text("""SELECT amount FROM "CreditGrant" WHERE "grantKey" = :key""")
_PARTS = text("""SELECT COALESCE(SUM(amount), 0) FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix""")


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


_GRANTED = text("""SELECT count(*) FROM "CreditGrant" WHERE "grantKey" = :key""")


def charge_for(session: Session, payment: AsaasPayment, after_grant: bool) -> Charge:
    """`charge_of`, except that an event about a granted subscription payment that carries `installment` uses
    the installment key when its grant was recorded there (before subscription periods were keyed per payment)."""
    charge = charge_of(payment)
    if not (after_grant and payment.subscription and payment.installment):
        return charge
    if session.execute(_GRANTED, {"key": charge.grant_key}).scalar_one():
        return charge
    legacy = _installment_charge(payment.installment, payment.id)
    return legacy if session.execute(_GRANTED, {"key": legacy.grant_key}).scalar_one() else charge


def share(session: Session, settings: Settings, charge: Charge, payment: AsaasPayment, user_id: str) -> Fraction:
    """The payment's share of its purchase: 1, or installment value / purchase total (see above)."""
    if not charge.installment or not payment.value or payment.value <= 0:
        return Fraction(1)
    cents = int(payment.value * 100)
    part_prefix = f"{charge.grant_key}:part:"
    claim_key(session, part_prefix + payment.id, user_id, None, cents, None)
    total = session.execute(_TOTAL, {"key": f"{charge.grant_key}:total"}).scalar_one_or_none()
    if total is None and payment.installment:
        from_api = installment_total(settings, payment.installment)
        if from_api is not None:
            total = int(from_api * 100)
            claim_key(session, f"{charge.grant_key}:total", user_id, None, total, None)
    if total is None:
        total = session.execute(_PARTS, {"n": len(part_prefix), "prefix": part_prefix}).scalar_one()
    return Fraction(cents, max(total, cents))


def refunded_fraction(payment: AsaasPayment) -> Fraction:
    """Refunded share of the payment itself (cumulative over its `refunds`)."""
    value = payment.value or Decimal(0)
    return Fraction(payment.refunded_value()) / Fraction(value) if value > 0 else Fraction(0)
