"""HTTP endpoints: translate requests to the `Receiver` and its results to JSON. No logic lives here."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ingest.http.request_log import remember_event
from ingest.http.responses import json_response
from ingest.receiver.errors import WebhookRejected
from ingest.receiver.inbox_writer import Accepted
from ingest.receiver.receiving import Receiver

webhooks = Blueprint("webhooks", __name__)


def receiver() -> Receiver:
    return current_app.extensions["pedro_receiver"]


def read_json_body() -> bytes:
    """The raw body, after the checks that need no reading: content type and declared size."""
    if request.mimetype != "application/json":
        raise WebhookRejected(415, "unsupported_media_type", "Content-Type must be application/json")
    return read_body()


def read_body() -> bytes:
    """The raw body, within the size limit, the body deadline and the process's bytes-in-flight budget."""
    return current_app.extensions["pedro_body"].read(request.environ)


def accepted_response(result: Accepted):
    remember_event(result)
    if result.duplicate:
        return json_response(200, "duplicate", {"status": "duplicate"})
    return json_response(200, "accepted", {"status": "accepted", "id": result.row_id, "enqueued": result.enqueued})


@webhooks.post("/webhooks/clerk")
def clerk_webhook():
    body = read_json_body()
    return accepted_response(receiver().receive_clerk(body, request.headers))


@webhooks.post("/webhooks/asaas")
def asaas_webhook():
    """Token checked before the body is read; any authentic stored body is answered 200 (see Receiver)."""
    return accepted_response(receiver().receive_asaas(request.headers, request.remote_addr, read_body))
