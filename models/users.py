"""`User` rows keyed by Clerk id: the only module that writes users."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow

# Both rows an upsert may write — its own, and another one still holding the address — locked in clerkId
# order before either is written, so two events that swap addresses between two users queue instead of
# deadlocking (each would otherwise lock the other's row first, then its own).
_LOCK_AFFECTED = text(
    """SELECT id FROM "User" WHERE "clerkId" = :clerk_id OR (email = :email AND "clerkId" <> :clerk_id)
       ORDER BY "clerkId" FOR UPDATE"""
)
_RELEASE_EMAIL = text(
    """UPDATE "User" SET email = NULL, "updatedAt" = :now WHERE email = :email AND "clerkId" <> :clerk_id"""
)
_UPSERT = text(
    """
    INSERT INTO "User" (id, "clerkId", email, name, "isActive", "createdAt", "updatedAt")
    VALUES (:id, :clerk_id, :email, :name, :active, :now, :now)
    ON CONFLICT ("clerkId") DO UPDATE
       SET email = EXCLUDED.email, name = EXCLUDED.name, "isActive" = EXCLUDED."isActive",
           "updatedAt" = EXCLUDED."updatedAt"
    RETURNING id
    """
)
# With an address, lock, release and upsert travel as one message (one round trip; PostgreSQL runs them in
# order, stops at the first error, and answers with the upsert's RETURNING).
_LOCK_RELEASE_UPSERT = text(f"{_LOCK_AFFECTED.text}; {_RELEASE_EMAIL.text}; {_UPSERT.text}")
_ERASE = text(
    """UPDATE "User" SET "isActive" = false, email = NULL, name = NULL, "updatedAt" = :now
       WHERE "clerkId" = :clerk_id RETURNING id"""
)


def upsert_from_clerk(session: Session, clerk_id: str, *, email: str | None, name: str | None, active: bool) -> str:
    """Create or update the user; returns `User.id`.

    Clerk guarantees an address belongs to one user at a time, so another row still holding it is stale
    (its change was missed or is older): the address is released there rather than failing the event.
    Lock order: both rows first, in `clerkId` order (see `_LOCK_AFFECTED`).
    """
    statement = _UPSERT if email is None else _LOCK_RELEASE_UPSERT
    user_id: str = session.execute(
        statement,
        {"id": new_id(), "clerk_id": clerk_id, "email": email, "name": name, "active": active, "now": utcnow()},
    ).scalar_one()
    return user_id


def deactivate_and_erase(session: Session, clerk_id: str) -> str | None:
    """Deletion: keep the row (ledger and history reference it) but drop personal data."""
    return session.execute(_ERASE, {"clerk_id": clerk_id, "now": utcnow()}).scalar_one_or_none()
