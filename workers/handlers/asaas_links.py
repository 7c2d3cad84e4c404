"""Who an Asaas payment or subscription is for (user and plan), and the state log both keep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy.orm import Session

from models import billing_links, subscription_log
from models.billing_links import Payer, PlanRef
from models.inbox import LockedEvent
from models.status import Failure
from workers.processing.errors import IgnoredByPolicy, PermanentError

if TYPE_CHECKING:
    from workers.handlers import HandlerContext


def resolve_payer(
    session: Session,
    context: HandlerContext,
    what: str,
    external_reference: str | None,
    subscription_id: str | None,
    link_id: str | None,
    grant_keys: tuple[str, ...] = (),
) -> tuple[Payer, PlanRef | None]:
    """User and plan of a payment or subscription; for events about a granted payment, the user its grant
    was made for, whoever `externalReference` names (a refund cannot debit someone else). None:
    `unlinked_payment`, failed; or, when the payment carries no reference of ours (another product sold
    from the same Asaas account), ignored by `ASAAS_UNLINKED_PAYMENTS=ignore`."""
    payer, plan = billing_links.resolve_asaas(
        session, external_reference=external_reference, subscription_id=subscription_id, payment_link_id=link_id
    )
    granted_to = billing_links.payer_of_grant(session, *grant_keys) if grant_keys else None
    if granted_to is not None:  # the grant's user is the truth for every later event about the payment
        payer = granted_to
    if payer is None:
        unlinked(
            context,
            f"{what} links to no user (externalReference, subscription link, earlier grant)",
            external_reference,
        )
    return payer, plan


def unlinked(context: HandlerContext, detail: str, reference: str | None) -> NoReturn:
    """`unlinked_payment`: failed (fix the link and replay), or ignored by `ASAAS_UNLINKED_PAYMENTS=ignore` when
    the reference is not ours (another product sold from the same Asaas account)."""
    if context.settings.asaas_unlinked_payments == "ignore" and not billing_links.looks_like_ours(reference):
        raise IgnoredByPolicy(Failure.UNLINKED_PAYMENT, detail + "; no externalReference of ours: ignored by policy")
    raise PermanentError(Failure.UNLINKED_PAYMENT, detail + "; fix and replay")


def log_state(
    session: Session, event: LockedEvent, payer: Payer, plan: PlanRef | None, status: str, ids: dict[str, Any]
) -> None:
    subscription_log.record(
        session,
        clerk_user_id=payer.clerk_id,
        user_id=payer.user_id,
        plan_key=plan.key if plan else None,
        status=status,
        event_type=event.eventType,
        occurred_at=event.occurredAt,
        metadata={"provider": "asaas", "eventId": event.eventId, **ids},
    )
