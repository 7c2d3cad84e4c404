"""`GET /healthz`, served on both ports: load balancers check the webhook port, operators the other."""

from __future__ import annotations

from flask import Blueprint

from ingest.http.responses import json_response

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """Liveness: the process answers. No I/O, so a database outage never restarts receivers."""
    return json_response(200, "ok", {"status": "ok"})
