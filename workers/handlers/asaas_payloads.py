"""Shapes of the Asaas payload fields pedro-ingest reads (extra fields are ignored; Asaas adds fields)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class AsaasModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AsaasRefund(AsaasModel):
    status: str | None = None
    value: Decimal = Decimal(0)


class AsaasPayment(AsaasModel):
    id: str = Field(min_length=1)
    customer: str | None = None
    subscription: str | None = None
    paymentLink: str | None = None
    value: Decimal | None = None
    externalReference: str | None = None
    billingType: str | None = None
    status: str | None = None
    refunds: list[AsaasRefund] | None = None

    def refunded_value(self) -> Decimal:
        """Sum of refunds not cancelled (`PENDING` counts: Asaas reports the refund once it is requested)."""
        return sum(
            (refund.value for refund in self.refunds or [] if (refund.status or "").upper() != "CANCELLED"),
            Decimal(0),
        )


class AsaasSubscription(AsaasModel):
    id: str = Field(min_length=1)
    customer: str | None = None
    paymentLink: str | None = None
    value: Decimal | None = None
    cycle: str | None = None
    status: str | None = None
    externalReference: str | None = None
    deleted: bool = False


class AsaasPaymentEnvelope(AsaasModel):
    id: str
    event: str
    payment: AsaasPayment


class AsaasSubscriptionEnvelope(AsaasModel):
    id: str
    event: str
    subscription: AsaasSubscription
