"""Which grant an Asaas payment belongs to, and what share of it the payment is.

A plain payment is its own purchase: grant `asaas:payment:<id>`, its reversals under
`asaas:payment:<id>:reversal`. A card purchase in installments sends one payment per installment (same
`payment.installment`), and is one purchase: grant `asaas:installment:<installment id>`, each
installment's reversals under `asaas:installment:<id>:reversal:<payment id>:`, worth its share of the
purchase. Webhooks do not carry the purchase total, so every installment payment seen records its value
once (`asaas:installment:<id>:part:<payment id>`, amount in cents, not credits) and the total is the sum
of the parts seen: Asaas confirms every installment of a card purchase together at checkout, so by the
time one is refunded or charged back all are on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import text
from sqlalchemy.orm import Session

from models import ledger
from models.ledger.grants import claim_key
from workers.handlers.asaas_payloads import AsaasPayment

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
    if payment.installment:
        key = f"asaas:installment:{payment.installment}"
        return Charge(key, f"{key}{ledger.REVERSAL_SUFFIX}:{payment.id}:", True)
    key = f"asaas:payment:{payment.id}"
    return Charge(key, key + ledger.REVERSAL_SUFFIX, False)


def share(session: Session, charge: Charge, payment: AsaasPayment, user_id: str) -> Fraction:
    """The payment's share of its purchase: 1, or installment value / sum of the installments seen."""
    if not charge.installment or not payment.value or payment.value <= 0:
        return Fraction(1)
    cents = int(payment.value * 100)
    part_prefix = f"{charge.grant_key}:part:"
    claim_key(session, part_prefix + payment.id, user_id, None, cents, None)
    total = session.execute(_PARTS, {"n": len(part_prefix), "prefix": part_prefix}).scalar_one()
    return Fraction(cents, max(total, cents))


def refunded_fraction(payment: AsaasPayment) -> Fraction:
    """Refunded share of the payment itself (cumulative over its `refunds`)."""
    value = payment.value or Decimal(0)
    return Fraction(payment.refunded_value()) / Fraction(value) if value > 0 else Fraction(0)
