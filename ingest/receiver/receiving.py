"""The request path: verify the raw body → store it once in the inbox → enqueue its id.

Nothing here knows HTTP frameworks: the Flask view passes bytes and headers in and turns the result or
a `WebhookRejected` into a response. Nothing is acknowledged before it is durable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace

from ingest.observability import metrics
from ingest.observability.event_types import event_type_label
from ingest.receiver.envelopes import asaas_envelope, clerk_occurred_at, parse_json_object, unparsed_payload
from ingest.receiver.errors import UnstorableBody, WebhookRejected
from ingest.receiver.inbox_writer import Accepted, InboxWriter
from ingest.receiver.verification import AsaasVerifier, ClerkVerifier, IpAllowList
from models.inbox import NewEvent
from models.inbox.reserved import RESERVED_EVENT, SYNC_EVENT_TYPE, SYNC_ID_PREFIX, reserved_on_the_wire
from models.status import EventStatus, Failure

MAX_EVENT_ID = 200  # the inbox's unique index refuses long keys; provider ids are about 30 characters
MAX_EVENT_TYPE = 100


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
        writer.on_batch = count_batch
        self.clerk = clerk
        self.asaas = asaas or AsaasVerifier([])
        self.asaas_ips = asaas_ips or IpAllowList([], [])

    def receive_asaas(
        self, headers: Mapping[str, str], remote_addr: str | None, read_body: Callable[[], bytes]
    ) -> Accepted:
        """Address, then token, then the body. Asaas counts only 200 as delivered, so an authentic body we
        cannot understand is stored `failed` (not enqueued) and still answered 200.

        The address comes first so that a refused address learns nothing about the token (403 either way).
        """
        self.asaas_ips.check(remote_addr, headers)
        self.asaas.verify(headers)
        body = read_body()
        envelope = asaas_envelope(body)
        event = NewEvent("asaas", envelope.event_id, envelope.event_type, envelope.payload_json, envelope.occurred_at)
        if reserved_on_the_wire(envelope.event_type, envelope.event_id):
            detail = f"{SYNC_EVENT_TYPE} and ids starting {SYNC_ID_PREFIX} are pedro-ingest's own (the backfill's)"
            return self.store_and_enqueue(replace(event, status=EventStatus.IGNORED, error=(RESERVED_EVENT, detail)))
        problem = envelope.problem
        if problem is None:
            try:
                return self.store_and_enqueue(event)
            except UnstorableBody:
                event, problem = replace(event, payload_json=unparsed_payload(body)), UnstorableBody().detail
        failed = replace(event, status=EventStatus.FAILED, error=(Failure.INVALID_PAYLOAD, problem))
        try:
            return self.store_and_enqueue(failed)  # stored `failed`: not enqueued
        except UnstorableBody:
            return self.store_and_enqueue(replace(failed, payload_json=unparsed_payload(body)))

    def receive_clerk(self, body: bytes, headers: Mapping[str, str]) -> Accepted:
        self.clerk.verify(body, headers)
        event_id = headers["svix-id"]
        if len(event_id) > MAX_EVENT_ID:
            raise WebhookRejected(400, "invalid_header", f"svix-id is longer than {MAX_EVENT_ID} characters")
        document, text = parse_json_object(body)
        event_type = document.get("type")
        if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_EVENT_TYPE:
            raise WebhookRejected(400, "missing_event_type", f"body has no string `type` of 1-{MAX_EVENT_TYPE} chars")
        occurred_at = clerk_occurred_at(document, headers["svix-timestamp"])
        return self.store_and_enqueue(NewEvent("clerk", event_id, event_type, text, occurred_at))

    def store_and_enqueue(self, event: NewEvent) -> Accepted:
        """Durable first, then queued: see `ingest.receiver.inbox_writer` for how requests share the round trips."""
        return self.writer.submit(event)


def count_batch(batch: list[Accepted]) -> None:
    """Count authentic events (new or duplicate) once per batch, not once per request: each counter update
    is a lock and a write to the shared sample file. A body stored `failed` on receipt is never enqueued."""
    received: Counter[tuple[str, str]] = Counter()
    duplicates: Counter[str] = Counter()
    not_enqueued: Counter[str] = Counter()
    for accepted in batch:
        event = accepted.event
        received[event.provider, event_type_label(event.event_type)] += 1
        if accepted.duplicate:
            duplicates[event.provider] += 1
        elif not accepted.enqueued and event.status is EventStatus.RECEIVED:
            not_enqueued[event.provider] += 1
    for labels, count in received.items():
        metrics.WEBHOOKS_RECEIVED.labels(*labels).inc(count)
    for provider, count in duplicates.items():
        metrics.WEBHOOKS_DUPLICATE.labels(provider).inc(count)
    for provider, count in not_enqueued.items():
        metrics.ENQUEUE_FAILURES.labels(provider).inc(count)
