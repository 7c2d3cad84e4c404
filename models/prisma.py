"""The web app's tables, exactly as Prisma Migrate creates them from schema.prisma.

These classes describe tables this service does not own: never add a column here without the web app's
Prisma schema gaining it first. Unique constraints are unique *indexes* (that is what Prisma creates).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamp, created_at, str_id, updated_at


class OperationType(enum.StrEnum):
    """`UsageHistory.operationType`. The last four are pedro-ingest's (migrations 0003, 0014)."""

    AI_TEXT_CHAT = "AI_TEXT_CHAT"
    AI_IMAGE_GENERATION = "AI_IMAGE_GENERATION"
    AI_VIDEO_GENERATION = "AI_VIDEO_GENERATION"
    SHORTS_SCRIPT = "SHORTS_SCRIPT"
    SHORTS_MEDIA = "SHORTS_MEDIA"
    CREDIT_GRANT = "CREDIT_GRANT"
    CREDIT_REVERSAL = "CREDIT_REVERSAL"
    CREDIT_ADJUSTMENT = "CREDIT_ADJUSTMENT"
    CREDIT_EXPIRY = "CREDIT_EXPIRY"  # migration 0014


operation_type_enum = Enum(
    OperationType, name="OperationType", values_callable=lambda members: [m.value for m in members]
)


def _fk(target: str, on_delete: str) -> ForeignKey:
    return ForeignKey(target, ondelete=on_delete, onupdate="CASCADE")


class User(Base):
    __tablename__ = "User"
    __table_args__ = (
        Index("User_clerkId_key", "clerkId", unique=True),
        Index("User_email_key", "email", unique=True),
        Index(None, "clerkId"),
        Index(None, "email"),
        Index(None, "isActive"),
        Index(None, "createdAt"),
    )

    id: Mapped[str_id]
    clerkId: Mapped[str]
    email: Mapped[str | None]
    name: Mapped[str | None]
    isActive: Mapped[bool] = mapped_column(server_default=text("true"), default=True)
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class Feature(Base):
    __tablename__ = "Feature"
    __table_args__ = (Index(None, "workspaceId"), Index(None, "name"))

    id: Mapped[str_id]
    workspaceId: Mapped[str]
    name: Mapped[str]
    description: Mapped[str | None]
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class CreditBalance(Base):
    __tablename__ = "CreditBalance"
    __table_args__ = (
        Index("CreditBalance_userId_key", "userId", unique=True),
        Index("CreditBalance_clerkUserId_key", "clerkUserId", unique=True),
        Index(None, "userId"),
        Index(None, "clerkUserId"),
    )

    id: Mapped[str_id]
    userId: Mapped[str] = mapped_column(_fk("User.id", "CASCADE"))
    clerkUserId: Mapped[str]
    creditsRemaining: Mapped[int] = mapped_column(server_default=text("100"))
    lastSyncedAt: Mapped[created_at]
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class UsageHistory(Base):
    """The credit ledger: `creditsUsed > 0` spends credits, `< 0` adds them."""

    __tablename__ = "UsageHistory"
    __table_args__ = (
        Index(None, "userId"),
        Index(None, "creditBalanceId"),
        Index(None, "timestamp"),
        Index(None, "operationType"),
    )

    id: Mapped[str_id]
    userId: Mapped[str] = mapped_column(_fk("User.id", "RESTRICT"))
    creditBalanceId: Mapped[str] = mapped_column(_fk("CreditBalance.id", "RESTRICT"))
    operationType: Mapped[OperationType] = mapped_column(operation_type_enum)
    creditsUsed: Mapped[int]
    details: Mapped[dict[str, Any] | None]
    timestamp: Mapped[created_at]


class AdminSettings(Base):
    __tablename__ = "AdminSettings"

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=text("'singleton'"))
    featureCosts: Mapped[dict[str, Any] | None]
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class Plan(Base):
    __tablename__ = "Plan"
    __table_args__ = (
        Index("Plan_asaasId_key", "asaasId", unique=True),
        Index("Plan_clerkId_key", "clerkId", unique=True),
        Index(None, "active"),
        Index(None, "sortOrder"),
        Index(None, "asaasId"),
        Index(None, "clerkId"),
    )

    id: Mapped[str_id]
    asaasId: Mapped[str | None]
    clerkId: Mapped[str | None]
    clerkName: Mapped[str | None]
    name: Mapped[str]
    credits: Mapped[int]
    active: Mapped[bool] = mapped_column(server_default=text("true"), default=True)
    sortOrder: Mapped[int] = mapped_column(server_default=text("0"), default=0)
    currency: Mapped[str | None]
    priceMonthlyCents: Mapped[int | None] = mapped_column(Integer)
    priceYearlyCents: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None]
    features: Mapped[dict[str, Any] | None]
    badge: Mapped[str | None]
    highlight: Mapped[bool] = mapped_column(server_default=text("false"), default=False)
    ctaType: Mapped[str | None] = mapped_column(server_default=text("'checkout'"))
    ctaLabel: Mapped[str | None]
    ctaUrl: Mapped[str | None]
    billingSource: Mapped[str] = mapped_column(server_default=text("'manual'"), default="manual")
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class StorageObject(Base):
    __tablename__ = "StorageObject"
    __table_args__ = (
        Index(None, "userId"),
        Index(None, "clerkUserId"),
        Index(None, "provider"),
        Index(None, "deletedAt"),
        Index(None, "createdAt"),
    )

    id: Mapped[str_id]
    userId: Mapped[str] = mapped_column(_fk("User.id", "CASCADE"))
    clerkUserId: Mapped[str]
    provider: Mapped[str] = mapped_column(server_default=text("'vercel_blob'"), default="vercel_blob")
    url: Mapped[str]
    pathname: Mapped[str]
    name: Mapped[str]
    contentType: Mapped[str | None]
    size: Mapped[int]
    deletedAt: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    createdAt: Mapped[created_at]
    updatedAt: Mapped[updated_at]


class SubscriptionEvent(Base):
    __tablename__ = "SubscriptionEvent"
    __table_args__ = (Index(None, "clerkUserId"), Index(None, "occurredAt"))

    id: Mapped[str_id]
    userId: Mapped[str | None] = mapped_column(_fk("User.id", "SET NULL"))
    clerkUserId: Mapped[str]
    planKey: Mapped[str | None]
    status: Mapped[str]
    eventType: Mapped[str]
    occurredAt: Mapped[created_at]
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    createdAt: Mapped[created_at]
