"""Reading provider envelopes from raw bodies: the dedupe key, the type and when it happened.

Every function here is pure (bytes in, values out) so that every odd body a provider can send is a unit
test, not a server test.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.receiver.dates import parse_date
from ingest.receiver.errors import WebhookRejected

MAX_JSON_DEPTH = 64  # provider envelopes nest about 6 deep; PostgreSQL and Python both have stack limits


class BodyProblem(ValueError):
    """Why a body cannot be stored as a JSON document (a sentence for the sender's operator)."""


def _depth_and_nul(document: Any) -> tuple[int, bool]:
    """How deep the document nests, and whether a key or string holds NUL (iterative: no recursion)."""
    deepest, nul, stack = 0, False, [(document, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            nul = nul or any("\x00" in key for key in node)
            children = node.values()
        else:
            children = node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and "\x00" in child:
                nul = True
    return deepest, nul


def load_json_object(body: bytes) -> tuple[dict[str, Any], str]:
    """The JSON object of a body and its text, checked against everything the inbox would refuse.

    Strict UTF-8 (`json.loads` would also guess UTF-16/32, which PostgreSQL then refuses), no `\\u0000`
    (jsonb cannot hold it), at most `MAX_JSON_DEPTH` levels. Raises `BodyProblem`.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyProblem("body is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise BodyProblem(f"body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise BodyProblem("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise BodyProblem("body is not a JSON object")
    # Both scans cost a walk of the document; the byte counts show in microseconds when none is needed.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH or "\\u0000" in text:
        depth, nul = _depth_and_nul(document)
        if depth > MAX_JSON_DEPTH:
            raise BodyProblem(f"body nests JSON deeper than {MAX_JSON_DEPTH} levels")
        if nul:
            raise BodyProblem("body is JSON that PostgreSQL cannot store (a \\u0000 escape)")
    return document, text


def parse_json_object(body: bytes) -> tuple[dict[str, Any], str]:
    """`load_json_object` for Clerk: any problem is a 400."""
    try:
        return load_json_object(body)
    except BodyProblem as problem:
        raise WebhookRejected(400, "invalid_json", str(problem)) from None


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
        document, payload_json = load_json_object(body)
    except BodyProblem as problem:
        return AsaasEnvelope(body_key, UNPARSEABLE_EVENT_TYPE, unparsed_payload(body), None, str(problem))
    event_id, event_type = document.get("id"), document.get("event")
    event_type = event_type if isinstance(event_type, str) and 0 < len(event_type) <= 100 else None
    occurred_at = parse_date(document.get("dateCreated"))
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        return AsaasEnvelope(
            body_key, event_type or UNPARSEABLE_EVENT_TYPE, payload_json, occurred_at, "body has no string `id`"
        )
    if event_type is None:
        return AsaasEnvelope(event_id, UNPARSEABLE_EVENT_TYPE, payload_json, occurred_at, "body has no string `event`")
    return AsaasEnvelope(event_id, event_type, payload_json, occurred_at)
