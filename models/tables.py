"""pedro-ingest's own tables (migrations 0002, 0004, 0006, 0009, 0011), in the web app's conventions.

The README carries the matching Prisma model block so the web app can add them to its schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, PrimaryKeyConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamp, created_at, str_id, updated_at
from models.prisma import OperationType, operation_type_enum
from models.status import EventStatus


class WebhookEvent(Base):
    """The inbox: one row per accepted provider event, deduplicated on (provider, eventId)."""

    __tablename__ = "WebhookEvent"
    __table_args__ = (
        Index("WebhookEvent_provider_eventId_key", "provider", "eventId", unique=True),
        Index(None, "status", "receivedAt"),
        Index(None, "receivedAt"),
    )

    id: Mapped[str_id]
    provider: Mapped[str]
    eventId: Mapped[str]
    eventType: Mapped[str]
    payload: Mapped[dict[str, Any] | None]
    receivedAt: Mapped[created_at]
    occurredAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(server_default=text("'received'"), default=EventStatus.RECEIVED.value)
    attempts: Mapped[int] = mapped_column(server_default=text("0"), default=0)
    lastError: Mapped[str | None]
    lastErrorDetail: Mapped[str | None]
    processedAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    updatedAt: Mapped[updated_at]


class CreditGrant(Base):
    """One row per credit fact (a grant or its reversal); the unique key makes each happen once."""

    __tablename__ = "CreditGrant"
    __table_args__ = (
        Index("CreditGrant_grantKey_key", "grantKey", unique=True),
        Index(None, "userId"),
    )

    id: Mapped[str_id]
    grantKey: Mapped[str]
    userId: Mapped[str] = mapped_column(ForeignKey("User.id", ondelete="RESTRICT", onupdate="CASCADE"))
    planId: Mapped[str | None] = mapped_column(ForeignKey("Plan.id", ondelete="SET NULL", onupdate="CASCADE"))
    amount: Mapped[int]
    sourceEventId: Mapped[str | None]
    createdAt: Mapped[created_at]


class EntityVersion(Base):
    """The newest provider version applied per entity, so older events never overwrite newer state."""

    __tablename__ = "EntityVersion"
    __table_args__ = (PrimaryKeyConstraint("entityType", "entityId"),)

    entityType: Mapped[str]
    entityId: Mapped[str]
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(server_default=text("false"), default=False)
    sourceEventId: Mapped[str | None]
    updatedAt: Mapped[updated_at]


class AsaasSubscriptionLink(Base):
    """Asaas subscription id → user and plan, learnt from `SUBSCRIPTION_*` events (migration 0004).

    Asaas subscriptions carry no plan object; this is how a later payment of the subscription finds
    whom to credit. Written only by `models.billing_links`.
    """

    __tablename__ = "AsaasSubscriptionLink"
    __table_args__ = (
        Index("AsaasSubscriptionLink_asaasSubscriptionId_key", "asaasSubscriptionId", unique=True),
        Index(None, "userId"),
    )

    id: Mapped[str_id]
    asaasSubscriptionId: Mapped[str]
    userId: Mapped[str] = mapped_column(ForeignKey("User.id", ondelete="RESTRICT", onupdate="CASCADE"))
    planId: Mapped[str | None] = mapped_column(ForeignKey("Plan.id", ondelete="SET NULL", onupdate="CASCADE"))
    asaasCustomerId: Mapped[str | None]
    externalReference: Mapped[str | None]
    sourceEventId: Mapped[str | None]
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class AsaasCheckoutLink(Base):
    """Asaas Checkout id → reference, user and plan (migration 0009), from `CHECKOUT_CREATED`/`CHECKOUT_PAID`.

    A checkout's charge names the checkout (`checkoutSession`) but carries no reference; this is how it finds
    whom to credit. `pendingEventIds`: inbox rows of charges processed before the link was known, applied when
    it arrives. Written only by `models.checkout_links`.
    """

    __tablename__ = "AsaasCheckoutLink"
    __table_args__ = (
        Index("AsaasCheckoutLink_asaasCheckoutId_key", "asaasCheckoutId", unique=True),
        Index(None, "userId"),
        Index(None, "asaasSubscriptionId"),
    )

    id: Mapped[str_id]
    asaasCheckoutId: Mapped[str]
    userId: Mapped[str | None]
    planId: Mapped[str | None]
    externalReference: Mapped[str | None]
    chargeType: Mapped[str | None]
    asaasSubscriptionId: Mapped[str | None]
    status: Mapped[str | None]
    pendingEventIds: Mapped[list[str] | None] = mapped_column(JSONB)
    sourceEventId: Mapped[str | None]
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class CreditDeduction(Base):
    """The web app's deductions by idempotency key (migration 0006); written only by `pedro_deduct_credits`.

    A row exists only for a deduction that happened: its ledger row, the balance it left, and its refund.
    """

    __tablename__ = "CreditDeduction"

    idempotencyKey: Mapped[str] = mapped_column(primary_key=True)
    clerkUserId: Mapped[str]
    userId: Mapped[str | None]
    creditBalanceId: Mapped[str | None]
    operationType: Mapped[OperationType] = mapped_column(operation_type_enum)
    credits: Mapped[int]
    balanceAfter: Mapped[int | None]
    usageHistoryId: Mapped[str | None]
    refundedAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    refundBalanceAfter: Mapped[int | None]
    refundUsageHistoryId: Mapped[str | None]
    createdAt: Mapped[created_at]


class CreditLot(Base):
    """One grant's credits (migration 0011): a balance is the sum of its live lots' `remaining`.

    Written only by the lot functions in the database (`pedro_lots_*`, `pedro_credit_*`), which every
    balance writer calls. Live: neither `expiredAt` nor `voidedAt` set.
    """

    __tablename__ = "CreditLot"
    __table_args__ = (Index(None, "creditBalanceId"), Index(None, "grantKey"), Index(None, "expiresAt"))

    id: Mapped[str_id]
    userId: Mapped[str]
    creditBalanceId: Mapped[str]
    grantKey: Mapped[str | None]
    category: Mapped[str]
    amount: Mapped[int]
    remaining: Mapped[int]
    priority: Mapped[int]
    effectiveAt: Mapped[dt.datetime] = mapped_column(Timestamp)
    expiresAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    periodEnd: Mapped[dt.datetime | None] = mapped_column(Timestamp)  # a plan period's end, without grace
    planId: Mapped[str | None]
    expiredAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    voidedAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    createdAt: Mapped[created_at]


class CreditLotDraw(Base):
    """Credits a fact (a deduction `deduction:<key>`, a reversal's grant key) took from one lot, so undoing
    the fact gives them back to the same lot (migration 0011)."""

    __tablename__ = "CreditLotDraw"
    __table_args__ = (PrimaryKeyConstraint("factKey", "lotId"),)

    factKey: Mapped[str]
    lotId: Mapped[str]
    credits: Mapped[int]
    createdAt: Mapped[created_at]


class CreditDebt(Base):
    """Credits a reversal could not take (the balance was already 0), owed until later credits repay them
    (migration 0011). Booked in the ledger only when repaid; written only by the lot functions."""

    __tablename__ = "CreditDebt"
    __table_args__ = (Index(None, "creditBalanceId"),)

    id: Mapped[str_id]
    userId: Mapped[str]
    creditBalanceId: Mapped[str]
    factKey: Mapped[str]
    amount: Mapped[int]
    remaining: Mapped[int]
    createdAt: Mapped[created_at]
    settledAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    cancelledAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
