"""SQLAlchemy models of the shared database, and the modules that own access to each concept."""

from models.base import Base
from models.prisma import (
    AdminSettings,
    CreditBalance,
    Feature,
    OperationType,
    Plan,
    StorageObject,
    SubscriptionEvent,
    UsageHistory,
    User,
)
from models.status import EventStatus
from models.tables import (
    AsaasCheckoutLink,
    AsaasSubscriptionLink,
    CreditDebt,
    CreditDeduction,
    CreditGrant,
    CreditLot,
    CreditLotDraw,
    EntityVersion,
    WebhookEvent,
)

__all__ = [
    "AsaasCheckoutLink",
    "AsaasSubscriptionLink",
    "AdminSettings",
    "Base",
    "CreditBalance",
    "CreditDebt",
    "CreditDeduction",
    "CreditLot",
    "CreditLotDraw",
    "CreditGrant",
    "EntityVersion",
    "EventStatus",
    "Feature",
    "OperationType",
    "Plan",
    "StorageObject",
    "SubscriptionEvent",
    "UsageHistory",
    "User",
    "WebhookEvent",
]
