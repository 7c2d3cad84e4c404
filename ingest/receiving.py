"""The request path: verify the raw body → store it once in the inbox → enqueue its id.

Nothing here knows HTTP frameworks: the Flask view passes bytes and headers in and turns the result or
a `WebhookRejected` into a response. Nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from ingest.errors import WebhookRejected
from ingest.observability import webhook_stored
from ingest.verification import ClerkVerifier
from models import inbox

DATABASE_RETRY_AFTER = 30


class Publisher(Protocol):
    def publish(self, row_id: str) -> bool: ...


@dataclass(frozen=True)
class Accepted:
    """A stored (or already stored) event: what the 200 response reports."""

    row_id: str | None
    duplicate: bool
    enqueued: bool


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "invalid_json", "body is not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise WebhookRejected(400, "invalid_json", "body must be a JSON object")
    return document


def clerk_occurred_at(document: Mapping[str, Any], svix_timestamp: str) -> dt.datetime | None:
    """When Clerk says the event happened: the envelope's `timestamp` (ms), else the Svix send time."""
    stamp = document.get("timestamp")
    try:
        seconds = stamp / 1000 if isinstance(stamp, int | float) and stamp > 0 else float(svix_timestamp)
        return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        return None


class Receiver:
    """Turns authentic provider requests into durable inbox rows and queued tasks."""

    def __init__(self, engine: Engine, publisher: Publisher, clerk: ClerkVerifier) -> None:
        self.engine = engine
        self.publisher = publisher
        self.clerk = clerk

    def receive_clerk(self, body: bytes, headers: Mapping[str, str]) -> Accepted:
        self.clerk.verify(body, headers)
        document = parse_json_object(body)
        event_type = document.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise WebhookRejected(400, "missing_event_type", "body has no string `type`")
        return self.store_and_enqueue(
            provider="clerk",
            event_id=headers["svix-id"],
            event_type=event_type,
            payload_json=body.decode(),
            occurred_at=clerk_occurred_at(document, headers["svix-timestamp"]),
        )

    def store_and_enqueue(self, **event: Any) -> Accepted:
        row_id = self.store(**event)
        if row_id is None:
            webhook_stored(event["provider"], event["event_id"], event["event_type"], duplicate=True, enqueued=False)
            return Accepted(row_id=None, duplicate=True, enqueued=False)
        enqueued = self.publisher.publish(row_id)
        webhook_stored(event["provider"], event["event_id"], event["event_type"], duplicate=False, enqueued=enqueued)
        if enqueued:
            try:
                with self.engine.begin() as connection:
                    inbox.mark_enqueued(connection, row_id)
            except DBAPIError:
                pass  # the task is queued and the row durable; the status is only a hint for the sweeper
        return Accepted(row_id=row_id, duplicate=False, enqueued=enqueued)

    def store(self, **event: Any) -> str | None:
        try:
            with self.engine.begin() as connection:
                return inbox.store(connection, **event)
        except DataError:
            # PostgreSQL refused the JSON (for example a \u0000 escape, which jsonb cannot hold).
            raise WebhookRejected(400, "invalid_json", "body is JSON that PostgreSQL cannot store") from None
        except (OperationalError, DBAPIError) as error:
            if isinstance(error, DBAPIError) and not (
                isinstance(error, OperationalError) or error.connection_invalidated
            ):
                raise
            raise WebhookRejected(
                503,
                "database_unavailable",
                "the event store is unavailable; retry later",
                retry_after=DATABASE_RETRY_AFTER,
            ) from None
