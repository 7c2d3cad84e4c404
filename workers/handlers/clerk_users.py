"""Clerk `user.*` events: keep `User` (and its first `CreditBalance`) equal to Clerk's newest state."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from models import ledger, users, versions
from models.inbox import LockedEvent
from models.ledger import CreditFact
from models.status import Failure
from workers.handlers.clerk_payloads import ClerkDeletedObject, ClerkEnvelope, ClerkUser
from workers.processing.errors import PermanentError

if TYPE_CHECKING:
    from workers.handlers import HandlerContext

ENTITY = "clerk_user"
# How far past its receipt an event's version may lie (clock skew between Clerk and us); beyond, a version
# such as the year 9999 would freeze the user against every later update. Relative to `receivedAt`, so a
# replay decides the same.
MAX_VERSION_AHEAD = dt.timedelta(minutes=5)


def event_version(
    envelope: ClerkEnvelope, event: LockedEvent, updated_at: int | None, *, deletion: bool = False
) -> int:
    """Milliseconds: the user's `updated_at`, else the event's own timestamp. An update's version later than
    the event's receipt plus MAX_VERSION_AHEAD is `invalid_payload`; a deletion (terminal, applied whatever
    its version) is recorded at most at that bound, so no stored version lies in the future."""
    if updated_at:
        version = updated_at
    elif envelope.timestamp:
        version = envelope.timestamp
    elif event.occurredAt is not None:
        version = int(event.occurredAt.replace(tzinfo=dt.UTC).timestamp() * 1000)
    else:
        raise PermanentError(Failure.INVALID_PAYLOAD, "event carries no updated_at or timestamp to order it by")
    latest = int((event.receivedAt.replace(tzinfo=dt.UTC) + MAX_VERSION_AHEAD).timestamp() * 1000)
    if version <= latest:
        return version
    if deletion:
        return latest
    raise PermanentError(Failure.INVALID_PAYLOAD, "updated_at is more than 5 minutes after the event was received")


def apply_clerk_user(
    session: Session, user: ClerkUser, version: int, source_event_id: str | None, signup_credits: int
) -> bool:
    """Upsert a Clerk user at `version`; False when a newer state (or the deletion) was already applied.

    Shared by the webhooks and the Backend API resync, so both obey the same version rules.
    """
    if not versions.advance(session, ENTITY, user.id, version, deleted=False, source_event_id=source_event_id):
        return False
    user_id = users.upsert_from_clerk(
        session, user.id, email=user.primary_email, name=user.full_name, active=not user.banned
    )
    ledger.open_balance_with_signup_grant(session, CreditFact(user_id, user.id, source_event_id), amount=signup_credits)
    return True


def user_upserted(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    envelope = ClerkEnvelope.model_validate(event.payload)
    user = ClerkUser.model_validate(envelope.data)
    version = event_version(envelope, event, user.updated_at)
    apply_clerk_user(session, user, version, event.id, context.settings.signup_credits)


def user_deleted(session: Session, event: LockedEvent, context: HandlerContext) -> None:
    envelope = ClerkEnvelope.model_validate(event.payload)
    deleted = ClerkDeletedObject.model_validate(envelope.data)
    version = event_version(envelope, event, None, deletion=True)
    if versions.advance(session, ENTITY, deleted.id, version, deleted=True, source_event_id=event.id):
        users.deactivate_and_erase(session, deleted.id)
