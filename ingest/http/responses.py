"""JSON responses for the receiver, and the outcome each one reports to the request log line.

`flask.jsonify` goes through the app's JSON provider (sorting keys, a proxy lookup per call); on the
webhook path, where every microsecond is paid by every delivery, a plain `json.dumps` does the same job.
The outcome (`accepted`, `duplicate`, an error code) is remembered on `flask.g`, so the after-request
hook never parses the body it just produced.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, has_request_context

OUTCOME_KEY = "pedro_outcome"


def json_response(status: int, outcome: str, payload: dict[str, Any]) -> Response:
    if has_request_context():
        setattr(g, OUTCOME_KEY, outcome)
    return Response(json.dumps(payload, separators=(",", ":")) + "\n", status=status, mimetype="application/json")


def recorded_outcome() -> str | None:
    return g.get(OUTCOME_KEY)
