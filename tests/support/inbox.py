"""Inbox rows written the way the receiver writes them, and a publisher that records instead of sending."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

from sqlalchemy import Engine

from models import inbox
from models.inbox import NewEvent
from models.status import EventStatus


def store_event(
    engine: Engine,
    payload: dict[str, Any] | str,
    *,
    provider: str = "clerk",
    event_type: str | None = None,
    event_id: str | None = None,
    status: EventStatus = EventStatus.RECEIVED,
) -> str:
    """One new inbox row (default `received`, as the broker-down path leaves it); returns its id."""
    payload_json = payload if isinstance(payload, str) else json.dumps(payload)
    event_type = event_type or (payload.get("type") or payload.get("event") if isinstance(payload, dict) else None)
    event = NewEvent(
        provider, event_id or f"msg_{secrets.token_hex(10)}", event_type or "test", payload_json, None, status
    )
    with engine.begin() as connection:
        row_id = inbox.store_many(connection, [event]).get(event.key)
    assert row_id is not None, f"{event.key} was already stored"
    return row_id


class RecordingPublisher:
    """Records every batch instead of sending it; the first publish can be held until `release()` so that
    other requests queue up behind it, and `accept=False` plays a broker that refuses."""

    def __init__(self, *, hold_first: bool = False, accept: bool = True) -> None:
        self.messages: list[list[str]] = []
        self.accept = accept
        self._held = threading.Event()
        self._release = threading.Event()
        if not hold_first:
            self._release.set()

    @property
    def published(self) -> list[str]:
        return [row_id for message in self.messages for row_id in message]

    def publish_many(self, row_ids: list[str]) -> bool:
        self.messages.append(list(row_ids))
        self._held.set()
        self._release.wait(10)
        return self.accept

    def wait_until_holding(self) -> None:
        assert self._held.wait(10), "the writer never published"

    def release(self) -> None:
        self._release.set()
