"""Per-entity version state: the newest provider version applied wins, whatever the arrival order."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import utcnow

# One statement both claims and serializes: the row lock taken by ON CONFLICT DO UPDATE makes concurrent
# events for one entity wait for each other; the WHERE lets only a newer version through, or a deletion
# whatever its version: a Clerk deletion is terminal (ids are never reused), so a deletion stamped before
# the last update (Clerk's own examples do this) still deletes. RETURNING yields a row only when applied.
_ADVANCE = text(
    """
    INSERT INTO "EntityVersion" ("entityType", "entityId", version, deleted, "sourceEventId", "updatedAt")
    VALUES (:entity_type, :entity_id, :version, :deleted, :source_event_id, :now)
    ON CONFLICT ("entityType", "entityId") DO UPDATE
       SET version = GREATEST("EntityVersion".version, EXCLUDED.version), deleted = EXCLUDED.deleted,
           "sourceEventId" = EXCLUDED."sourceEventId", "updatedAt" = EXCLUDED."updatedAt"
     WHERE "EntityVersion".version < EXCLUDED.version
        OR (EXCLUDED.deleted AND NOT "EntityVersion".deleted)
    RETURNING 1
    """
)


def advance(
    session: Session,
    entity_type: str,
    entity_id: str,
    version: int,
    *,
    deleted: bool,
    source_event_id: str | None,
) -> bool:
    """Record `version` for the entity if it is newer than what was applied; False means: stale, skip it."""
    applied = session.execute(
        _ADVANCE,
        {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "version": version,
            "deleted": deleted,
            "source_event_id": source_event_id,
            "now": utcnow(),
        },
    ).scalar_one_or_none()
    return applied is not None
