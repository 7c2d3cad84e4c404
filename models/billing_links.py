"""Who pays and for which plan: the one module that links provider billing objects to `User` and `Plan`.

Asaas (no plan objects) resolves, first match wins:
1. the payment's `externalReference`, then its subscription's (as stored from `SUBSCRIPTION_*`):
   `<user>` or `<user>|plan:<plan>`, where `<user>` is a Clerk user id (`user_…`) or a `User.id` and
   `<plan>` is a `Plan.id` or `Plan.asaasId` (100 characters at most, Asaas's limit);
2. the link stored when `SUBSCRIPTION_CREATED`/`SUBSCRIPTION_UPDATED` was processed (subscription id →
   user, plan);
3. for the plan only: the `Plan` whose `asaasId` is the payment's subscription id or payment-link id.
Clerk Billing: the payer's `user_id` → `User.clerkId`; the plan by `Plan.clerkId` (Clerk plan id), else
`Plan.clerkName` (plan slug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow
from models.prisma import Plan, User
from models.tables import AsaasSubscriptionLink

EXTERNAL_REFERENCE_MAX = 100
PLAN_MARKER = "plan:"


@dataclass(frozen=True)
class Payer:
    user_id: str
    clerk_id: str


@dataclass(frozen=True)
class PlanRef:
    id: str
    credits: int
    key: str


@dataclass(frozen=True)
class Reference:
    """A parsed `externalReference`: a user reference and an optional plan reference."""

    user: str | None
    plan: str | None


def parse_external_reference(raw: object) -> Reference | None:
    """`user_…`, `<User.id>`, or either followed by `|plan:<Plan.id or Plan.asaasId>`; None if unusable."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > EXTERNAL_REFERENCE_MAX:
        return None
    user_part, _, rest = raw.strip().partition("|")
    plan = rest.strip()[len(PLAN_MARKER) :].strip() if rest.strip().startswith(PLAN_MARKER) else None
    return Reference(user=user_part.strip() or None, plan=plan or None)


_CUID = re.compile(r"c[a-z0-9]{20,31}")


def looks_like_ours(raw: object) -> bool:
    """An `externalReference` written by our web app: a Clerk user id, a `User.id` (cuid) or a plan marker.
    Anything else (absent, an order number of another product) belongs to another product on the account."""
    reference = parse_external_reference(raw)
    if reference is None:
        return False
    user = reference.user or ""
    return reference.plan is not None or user.startswith("user_") or _CUID.fullmatch(user) is not None


def find_user(session: Session, reference: str | None) -> Payer | None:
    """A user by Clerk id or by `User.id`."""
    if not reference:
        return None
    row = session.execute(
        select(User.id, User.clerkId).where(or_(User.clerkId == reference, User.id == reference)).limit(1)
    ).first()
    return Payer(user_id=row.id, clerk_id=row.clerkId) if row else None


_GRANT_OWNER = text(
    """SELECT u.id, u."clerkId" FROM "CreditGrant" g JOIN "User" u ON u.id = g."userId"
        WHERE g."grantKey" = ANY(:keys) ORDER BY array_position(:keys, g."grantKey") LIMIT 1"""
)


def payer_of_grant(session: Session, *grant_keys: str) -> Payer | None:
    """The user a grant (or a reversal recorded before it) was made for: refunds, chargebacks and restores
    that carry only `payment.id` belong to whoever the payment's first event was resolved to."""
    row = session.execute(_GRANT_OWNER, {"keys": list(grant_keys)}).first()
    return Payer(user_id=row.id, clerk_id=row.clerkId) if row else None


def _plan(row: Plan | None) -> PlanRef | None:
    return PlanRef(id=row.id, credits=row.credits, key=row.id) if row else None


def find_plan(session: Session, reference: str | None) -> PlanRef | None:
    """A plan by `Plan.id` or `Plan.asaasId`."""
    if not reference:
        return None
    return _plan(
        session.execute(select(Plan).where(or_(Plan.id == reference, Plan.asaasId == reference)).limit(1)).scalar()
    )


def find_clerk_plan(session: Session, clerk_plan_id: str | None, slug: str | None) -> PlanRef | None:
    """A plan by Clerk plan id (`Plan.clerkId`), else by slug (`Plan.clerkName`)."""
    for column, value in ((Plan.clerkId, clerk_plan_id), (Plan.clerkName, slug)):
        if value:
            found = session.execute(select(Plan).where(column == value).order_by(Plan.id).limit(1)).scalar()
            if found is not None:
                return _plan(found)
    return None


def subscription_link(session: Session, subscription_id: str | None) -> AsaasSubscriptionLink | None:
    if not subscription_id:
        return None
    return session.execute(
        select(AsaasSubscriptionLink).where(AsaasSubscriptionLink.asaasSubscriptionId == subscription_id)
    ).scalar()


def resolve_asaas(
    session: Session,
    *,
    external_reference: object,
    subscription_id: str | None,
    payment_link_id: str | None = None,
) -> tuple[Payer | None, PlanRef | None]:
    """User and plan of an Asaas payment or subscription, in the documented order (either may be None)."""
    link = subscription_link(session, subscription_id)
    parsed = [parse_external_reference(external_reference)]
    if link is not None:
        parsed.append(parse_external_reference(link.externalReference))
    references = [ref for ref in parsed if ref is not None]

    payer = next((found for ref in references if (found := find_user(session, ref.user))), None)
    plan = next((found_plan for ref in references if (found_plan := find_plan(session, ref.plan))), None)
    if payer is None and link is not None:
        payer = find_user(session, link.userId)
    if plan is None and link is not None and link.planId:
        plan = find_plan(session, link.planId)
    for candidate in (subscription_id, payment_link_id):
        if plan is None and candidate:
            plan = _plan(session.execute(select(Plan).where(Plan.asaasId == candidate)).scalar())
    return payer, plan


_REMEMBER = text(
    """
    INSERT INTO "AsaasSubscriptionLink" (id, "asaasSubscriptionId", "userId", "planId", "asaasCustomerId",
                                         "externalReference", "sourceEventId", cycle, "createdAt", "updatedAt")
    VALUES (:id, :subscription_id, :user_id, :plan_id, :customer_id, :external_reference, :source_event_id,
            :cycle, :now, :now)
    ON CONFLICT ("asaasSubscriptionId") DO UPDATE
       SET "userId" = EXCLUDED."userId", "planId" = COALESCE(EXCLUDED."planId", "AsaasSubscriptionLink"."planId"),
           "asaasCustomerId" = EXCLUDED."asaasCustomerId",
           "externalReference" = COALESCE(EXCLUDED."externalReference", "AsaasSubscriptionLink"."externalReference"),
           cycle = COALESCE(EXCLUDED.cycle, "AsaasSubscriptionLink".cycle),
           "sourceEventId" = EXCLUDED."sourceEventId", "updatedAt" = EXCLUDED."updatedAt"
    """
)


def remember_asaas_subscription(
    session: Session,
    *,
    subscription_id: str,
    payer: Payer,
    plan: PlanRef | None,
    customer_id: str | None,
    external_reference: str | None,
    source_event_id: str | None,
    cycle: str | None = None,
) -> None:
    """Store (or refresh) the subscription → user/plan link (and its cycle) used by later payments."""
    session.execute(
        _REMEMBER,
        {
            "id": new_id(),
            "subscription_id": subscription_id,
            "user_id": payer.user_id,
            "plan_id": plan.id if plan else None,
            "customer_id": customer_id,
            "external_reference": external_reference
            if isinstance(external_reference, str) and len(external_reference) <= EXTERNAL_REFERENCE_MAX
            else None,
            "source_event_id": source_event_id,
            "cycle": cycle,
            "now": utcnow(),
        },
    )
