"""Shapes of the Asaas payload fields pedro-ingest reads (extra fields are ignored; Asaas adds fields).

Every field carries the bounds of where it is written (`workers/handlers/bounds.py`), so an oversize id
or an absurd amount fails validation with the field named.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from workers.handlers.bounds import Money, ProviderId, Text


class AsaasModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AsaasRefund(AsaasModel):
    status: Text | None = None
    value: Money = Decimal(0)


class AsaasChargeback(AsaasModel):
    """`payment.chargeback`: `REQUESTED`, `IN_DISPUTE`, `DISPUTE_LOST`, `REVERSED` (won), `DONE`."""

    status: Text | None = None


class AsaasPayment(AsaasModel):
    id: ProviderId
    customer: ProviderId | None = None
    subscription: ProviderId | None = None
    installment: ProviderId | None = None
    installmentNumber: int | None = Field(default=None, ge=1, le=1000)
    paymentLink: ProviderId | None = None
    checkoutSession: ProviderId | None = None  # the Asaas Checkout that created this charge
    value: Money | None = None
    externalReference: Text | None = None
    billingType: Text | None = None
    status: Text | None = None
    refunds: list[AsaasRefund] | None = Field(default=None, max_length=1000)
    chargeback: AsaasChargeback | None = None
    dueDate: Text | None = None

    def refunded_value(self) -> Decimal:
        """Sum of refunds not cancelled (`PENDING` counts: Asaas reports the refund once it is requested)."""
        return sum(
            (refund.value for refund in self.refunds or [] if (refund.status or "").upper() != "CANCELLED"),
            Decimal(0),
        )


class AsaasSubscription(AsaasModel):
    id: ProviderId
    customer: ProviderId | None = None
    paymentLink: ProviderId | None = None
    value: Money | None = None
    cycle: Text | None = None
    status: Text | None = None
    externalReference: Text | None = None
    deleted: bool = False


class AsaasCheckoutSubscription(AsaasModel):
    """`checkout.subscription` of a recurrent checkout: its cycle (an `id` only once Asaas created it)."""

    id: ProviderId | None = None
    cycle: Text | None = None


class AsaasCheckout(AsaasModel):
    id: ProviderId
    status: Text | None = None
    chargeTypes: list[Text] | None = Field(default=None, max_length=10)
    externalReference: Text | None = None
    customer: ProviderId | None = None
    subscription: AsaasCheckoutSubscription | None = None

    @property
    def charge_type(self) -> str | None:
        """`RECURRENT` when the checkout creates a subscription, else its first charge type (`DETACHED`…)."""
        types = [kind.upper() for kind in self.chargeTypes or []]
        if "RECURRENT" in types:
            return "RECURRENT"
        return types[0] if types else None


class AsaasCheckoutEnvelope(AsaasModel):
    id: Text | None = None
    event: Text
    checkout: AsaasCheckout


class AsaasPaymentEnvelope(AsaasModel):
    id: Text | None = None  # the docs' examples have none; the inbox keys those by the body's hash
    event: Text
    payment: AsaasPayment


class AsaasSubscriptionEnvelope(AsaasModel):
    id: Text | None = None  # the docs' examples have none; the inbox keys those by the body's hash
    event: Text
    subscription: AsaasSubscription
