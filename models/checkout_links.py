"""Asaas Checkout links (`AsaasCheckoutLink`): which user and plan a checkout's charges pay for.

A checkout's charge carries `checkoutSession` (the checkout id) and no reference; the web app's reference is
on the checkout, delivered by `CHECKOUT_CREATED` / `CHECKOUT_PAID`. Either side may come first: a charge that
finds no linked user records its inbox row in `pendingEventIds`, and the checkout event that links the user
takes those rows to apply them. Both sides lock the link row first (an upsert), so they never interleave.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow

_COLUMNS = '"userId", "planId", "externalReference", "chargeType", "asaasSubscriptionId"'
_TOUCH = text(
    f"""
    INSERT INTO "AsaasCheckoutLink" (id, "asaasCheckoutId", "createdAt", "updatedAt")
    VALUES (:id, :checkout_id, :now, :now)
    ON CONFLICT ("asaasCheckoutId") DO UPDATE SET "updatedAt" = EXCLUDED."updatedAt"
    RETURNING id, {_COLUMNS}, "pendingEventIds"
    """
)
_REMEMBER = text(
    """
    UPDATE "AsaasCheckoutLink"
       SET "userId" = COALESCE(:user_id, "userId"), "planId" = COALESCE(:plan_id, "planId"),
           "externalReference" = COALESCE(:external_reference, "externalReference"),
           "chargeType" = COALESCE(:charge_type, "chargeType"),
           "asaasSubscriptionId" = COALESCE(:subscription_id, "asaasSubscriptionId"),
           status = COALESCE(:status, status), "sourceEventId" = :source_event_id,
           "pendingEventIds" = CASE WHEN COALESCE(:user_id, "userId") IS NULL THEN "pendingEventIds" END,
           "updatedAt" = :now
     WHERE id = :id
    """
)
_ADD_PENDING = text(
    """UPDATE "AsaasCheckoutLink" SET "pendingEventIds" = CAST(:pending AS jsonb), "updatedAt" = :now
        WHERE id = :id"""
)
_SET_SUBSCRIPTION = text(
    """UPDATE "AsaasCheckoutLink" SET "asaasSubscriptionId" = :subscription_id, "updatedAt" = :now
        WHERE "asaasCheckoutId" = :checkout_id AND "asaasSubscriptionId" IS DISTINCT FROM :subscription_id"""
)


@dataclass(frozen=True)
class CheckoutLink:
    checkout_id: str
    user_id: str | None
    plan_id: str | None
    external_reference: str | None
    charge_type: str | None
    subscription_id: str | None

    @property
    def recurrent(self) -> bool:
        return self.charge_type == "RECURRENT"


def _lock(session: Session, checkout_id: str) -> tuple[str, CheckoutLink, list[str]]:
    """The checkout's link row, created empty if new, locked until the end of the transaction."""
    row = session.execute(_TOUCH, {"id": new_id(), "checkout_id": checkout_id, "now": utcnow()}).one()
    pending = [item for item in row.pendingEventIds or [] if isinstance(item, str)]
    link = CheckoutLink(checkout_id, row.userId, row.planId, row.externalReference, row.chargeType,
                        row.asaasSubscriptionId)  # fmt: skip
    return row.id, link, pending


def link_or_wait(session: Session, checkout_id: str, event_row_id: str) -> CheckoutLink | None:
    """The checkout's link when its user is known; otherwise the charge's inbox row is recorded as waiting
    (once) and None is returned: the checkout event that links the user applies it."""
    row_id, link, pending = _lock(session, checkout_id)
    if link.user_id is not None:
        return link
    if event_row_id not in pending:
        session.execute(_ADD_PENDING, {"id": row_id, "pending": json.dumps([*pending, event_row_id]), "now": utcnow()})
    return None


def remember(
    session: Session,
    *,
    checkout_id: str,
    user_id: str | None,
    plan_id: str | None,
    external_reference: str | None,
    charge_type: str | None,
    subscription_id: str | None,
    status: str | None,
    source_event_id: str | None,
) -> tuple[CheckoutLink, list[str]]:
    """Store what a checkout event says (values it lacks keep what an earlier event stored). Returns the link
    and, once it has a user, the inbox rows of charges that waited for it (taken: the list is emptied)."""
    row_id, before, pending = _lock(session, checkout_id)
    session.execute(
        _REMEMBER,
        {
            "id": row_id,
            "user_id": user_id,
            "plan_id": plan_id,
            "external_reference": external_reference,
            "charge_type": charge_type,
            "subscription_id": subscription_id,
            "status": status,
            "source_event_id": source_event_id,
            "now": utcnow(),
        },
    )
    link = CheckoutLink(
        checkout_id,
        user_id or before.user_id,
        plan_id or before.plan_id,
        external_reference or before.external_reference,
        charge_type or before.charge_type,
        subscription_id or before.subscription_id,
    )
    return link, pending if link.user_id is not None else []


def find(session: Session, checkout_id: str) -> CheckoutLink | None:
    row = session.execute(
        text(f'SELECT {_COLUMNS} FROM "AsaasCheckoutLink" WHERE "asaasCheckoutId" = :c'), {"c": checkout_id}
    ).one_or_none()
    return CheckoutLink(checkout_id, *row) if row is not None else None


def link_subscription(session: Session, checkout_id: str, subscription_id: str) -> None:
    """The Asaas subscription a recurrent checkout created (learnt from its first charge)."""
    values = {"checkout_id": checkout_id, "subscription_id": subscription_id, "now": utcnow()}
    session.execute(_SET_SUBSCRIPTION, values)
