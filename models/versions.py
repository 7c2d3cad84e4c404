"""Per-entity version state: the newest provider version applied wins, whatever the arrival order."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import utcnow

# One statement both claims and serializes: the row lock taken by ON CONFLICT DO UPDATE makes concurrent
# events for one entity wait for each other; the WHERE lets only a newer version (or a delete at the same
# version) through. RETURNING yields a row only when this event is the newest.
_ADVANCE = text(
    """
    INSERT INTO "EntityVersion" ("entityType", "entityId", version, deleted, "sourceEventId", "updatedAt")
    VALUES (:entity_type, :entity_id, :version, :deleted, :source_event_id, :now)
    ON CONFLICT ("entityType", "entityId") DO UPDATE
       SET version = EXCLUDED.version, deleted = EXCLUDED.deleted,
           "sourceEventId" = EXCLUDED."sourceEventId", "updatedAt" = EXCLUDED."updatedAt"
     WHERE "EntityVersion".version < EXCLUDED.version
        OR ("EntityVersion".version = EXCLUDED.version AND EXCLUDED.deleted AND NOT "EntityVersion".deleted)
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
