"""The request path: verify the raw body → store it once in the inbox → enqueue its id.

Nothing here knows HTTP frameworks: the Flask view passes bytes and headers in and turns the result or
a `WebhookRejected` into a response. Nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ingest.batching import Accepted, InboxWriter
from ingest.errors import WebhookRejected
from ingest.verification import ClerkVerifier


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

    def __init__(self, writer: InboxWriter, clerk: ClerkVerifier) -> None:
        self.writer = writer
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
        """Durable first, then queued: see `ingest.batching` for how requests share the round trips."""
        return self.writer.submit(event)
