"""Reading provider envelopes from raw bodies: the dedupe key, the type and when it happened.

Every function here is pure (bytes in, values out) so that every odd body a provider can send is a unit
test, not a server test.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.formats.dates import epoch_millis, parse_date
from ingest.receiver.errors import WebhookRejected

MAX_JSON_DEPTH = 64  # provider envelopes nest about 6 deep; PostgreSQL and Python both have stack limits


class BodyProblem(ValueError):
    """Why a body cannot be stored as a JSON document (a sentence for the sender's operator)."""


class NotJson(BodyProblem):
    """The body is not JSON at all (a syntax error), as opposed to JSON the inbox cannot hold."""


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
        raise NotJson("body is not valid JSON") from None
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
    """When Clerk says the event happened: the envelope's `timestamp` (seconds in Clerk's examples,
    milliseconds live: `parse_date` reads both), else the Svix send time (seconds)."""
    stamp = document.get("timestamp")
    if epoch_millis(stamp):
        return parse_date(stamp)
    try:
        return parse_date(int(svix_timestamp))
    except ValueError:
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
# The event type of a body that is not valid JSON (Asaas's own docs publish one with a trailing comma).
_EVENT_TYPE = re.compile(rb'"event"\s*:\s*"([A-Z][A-Z0-9_]{0,99})"')


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

    A body without a usable `id` (Asaas's documentation examples have none) is keyed by its SHA-256
    (`sha256:<hex>`), so an identical redelivery is still a duplicate; it is processed like any other, so
    a type we do not handle ends `ignored`. A body that is not JSON but names its `event` is kept as
    `unparsedBody` and processed the same way (ignored, or `invalid_payload` for a type we handle);
    only a body whose type cannot be found is stored `failed` (`problem`).
    """
    body_key = "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        document, payload_json = load_json_object(body)
    except BodyProblem as problem:
        found = _EVENT_TYPE.search(body) if isinstance(problem, NotJson) else None
        if found:  # broken JSON whose type is still readable: processed under it (an unhandled type ends ignored)
            return AsaasEnvelope(body_key, found.group(1).decode(), unparsed_payload(body), None)
        return AsaasEnvelope(body_key, UNPARSEABLE_EVENT_TYPE, unparsed_payload(body), None, str(problem))
    event_id, event_type = document.get("id"), document.get("event")
    event_type = event_type if isinstance(event_type, str) and 0 < len(event_type) <= 100 else None
    occurred_at = parse_date(document.get("dateCreated"))
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        event_id = body_key
    if event_type is None:
        return AsaasEnvelope(event_id, UNPARSEABLE_EVENT_TYPE, payload_json, occurred_at, "body has no string `event`")
    return AsaasEnvelope(event_id, event_type, payload_json, occurred_at)
