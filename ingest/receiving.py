"""The request path: verify the raw body → store it once in the inbox → enqueue its id.

Nothing here knows HTTP frameworks: the Flask view passes bytes and headers in and turns the result or
a `WebhookRejected` into a response. Nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.batching import Accepted, InboxWriter
from ingest.dates import parse_date
from ingest.errors import WebhookRejected
from ingest.observability import webhook_stored
from ingest.verification import AsaasVerifier, ClerkVerifier, IpAllowList
from models.tables import EventStatus


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


@dataclass(frozen=True)
class AsaasEnvelope:
    """What the inbox needs from an Asaas body; `problem` is set when the body is not understood."""

    event_id: str
    event_type: str
    payload_json: str
    occurred_at: dt.datetime | None
    problem: str | None = None


UNPARSEABLE_EVENT_TYPE = "unparseable"


def unparsed_payload(body: bytes) -> str:
    """A JSON document that keeps any body (text, or base64 when it is not UTF-8 or holds NUL) for replay."""
    try:
        text = body.decode()
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", body, 0, 1, "NUL")
        return json.dumps({"unparsedBody": text, "encoding": "utf-8"})
    except UnicodeDecodeError:
        return json.dumps({"unparsedBody": base64.b64encode(body).decode(), "encoding": "base64"})


def asaas_envelope(body: bytes) -> AsaasEnvelope:
    """Read `id`, `event` and `dateCreated` from an Asaas body; never raises.

    A body without a usable `id` is keyed by its SHA-256 (`sha256:<hex>`), so an identical redelivery is
    still a duplicate.
    """
    body_key = "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return AsaasEnvelope(body_key, UNPARSEABLE_EVENT_TYPE, unparsed_payload(body), None, "body is not valid JSON")
    if not isinstance(document, dict):
        return AsaasEnvelope(
            body_key, UNPARSEABLE_EVENT_TYPE, unparsed_payload(body), None, "body is not a JSON object"
        )
    event_id, event_type = document.get("id"), document.get("event")
    event_type = event_type if isinstance(event_type, str) and 0 < len(event_type) <= 100 else None
    occurred_at = parse_date(document.get("dateCreated"))
    payload_json = body.decode()
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        return AsaasEnvelope(
            body_key, event_type or UNPARSEABLE_EVENT_TYPE, payload_json, occurred_at, "body has no string `id`"
        )
    if event_type is None:
        return AsaasEnvelope(event_id, UNPARSEABLE_EVENT_TYPE, payload_json, occurred_at, "body has no string `event`")
    return AsaasEnvelope(event_id, event_type, payload_json, occurred_at)


class Receiver:
    """Turns authentic provider requests into durable inbox rows and queued tasks."""

    def __init__(
        self,
        writer: InboxWriter,
        clerk: ClerkVerifier,
        asaas: AsaasVerifier | None = None,
        asaas_ips: IpAllowList | None = None,
    ) -> None:
        self.writer = writer
        self.clerk = clerk
        self.asaas = asaas or AsaasVerifier([])
        self.asaas_ips = asaas_ips or IpAllowList([], [])

    def receive_asaas(
        self, headers: Mapping[str, str], remote_addr: str | None, read_body: Callable[[], bytes]
    ) -> Accepted:
        """Token (and optional IP) first, then the body. Asaas counts only 200 as delivered, so an
        authentic body we cannot understand is stored `failed` (not enqueued) and still answered 200."""
        self.asaas.verify(headers)
        self.asaas_ips.check(remote_addr, headers)
        body = read_body()
        envelope = asaas_envelope(body)
        payload_json, problem = envelope.payload_json, envelope.problem
        if problem is None:
            try:
                return self.store_and_enqueue(
                    provider="asaas",
                    event_id=envelope.event_id,
                    event_type=envelope.event_type,
                    payload_json=payload_json,
                    occurred_at=envelope.occurred_at,
                )
            except WebhookRejected as rejected:
                if rejected.code != "invalid_json":
                    raise
                payload_json, problem = unparsed_payload(body), "body is JSON that PostgreSQL cannot store"
        failed = {
            "provider": "asaas",
            "event_id": envelope.event_id,
            "event_type": envelope.event_type,
            "occurred_at": envelope.occurred_at,
            "status": EventStatus.FAILED,
            "error": ("invalid_payload", problem),
        }
        try:
            return self.store_and_enqueue(payload_json=payload_json, **failed)  # stored `failed`: not enqueued
        except WebhookRejected as rejected:
            if rejected.code != "invalid_json":
                raise
            return self.store_and_enqueue(payload_json=unparsed_payload(body), **failed)

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
        accepted = self.writer.submit(event)
        webhook_stored(
            event["provider"], event["event_id"], event["event_type"],
            duplicate=accepted.duplicate, enqueued=accepted.enqueued, stored_failed="status" in event,
        )  # fmt: skip
        return accepted
