"""`SubscriptionEvent`: the audit log of subscription state changes, written only here.

One row per provider event that changes a subscription's state. "Exactly once" comes from the inbox:
the row is written in the transaction that marks the inbox row `processed` (a redelivery finds it final,
a failed attempt rolls the row back). `metadata` is a compact, secret-free subset: provider ids, never
card data, emails or the payload.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import new_id, utcnow

_INSERT = text(
    """
    INSERT INTO "SubscriptionEvent"
        (id, "userId", "clerkUserId", "planKey", status, "eventType", "occurredAt", metadata, "createdAt")
    VALUES (:id, :user_id, :clerk_user_id, :plan_key, :status, :event_type, :occurred_at,
            CAST(:metadata AS jsonb), :now)
    """
)


def record(
    session: Session,
    *,
    clerk_user_id: str,
    user_id: str | None,
    plan_key: str | None,
    status: str,
    event_type: str,
    occurred_at: dt.datetime | None,
    metadata: dict[str, Any],
) -> None:
    """Append one state change. `metadata` values that are None are dropped to keep rows compact."""
    now = utcnow()
    session.execute(
        _INSERT,
        {
            "id": new_id(),
            "user_id": user_id,
            "clerk_user_id": clerk_user_id,
            "plan_key": plan_key,
            "status": status,
            "event_type": event_type,
            "occurred_at": occurred_at or now,
            "metadata": json.dumps({k: v for k, v in metadata.items() if v is not None}, separators=(",", ":")),
            "now": now,
        },
    )
