"""The handler registry: one plain function per (provider, event type), all listed in one table.

A handler is `handler(session, event, context)`: it reads `event.payload`, writes effects through the
`models` data-access modules inside the caller's transaction, and raises `PermanentError` for input it
cannot apply. Unknown types are not in the table and end `ignored`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ingest.settings import Settings
from models.tables import WebhookEvent
from workers.handlers import clerk_users


@dataclass(frozen=True)
class HandlerContext:
    settings: Settings


Handler = Callable[[Session, WebhookEvent, HandlerContext], None]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("clerk", "user.created"): clerk_users.user_upserted,
    ("clerk", "user.updated"): clerk_users.user_upserted,
    ("clerk", "user.deleted"): clerk_users.user_deleted,
}
