"""Operations endpoints: readiness, Prometheus metrics and the OpenAPI document. No logic lives here.

They are served by the operations app only (`ingest.http.operations_app`), on a port of their own.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ingest.http import openapi
from ingest.http.readiness import setup_problems

operations = Blueprint("operations", __name__)


@operations.get("/readyz")
def readyz():
    """503 naming what does not answer, so an orchestrator stops routing webhooks here; `problems`: what to
    fix, one sentence per setting (the same lines `serve` logs at start)."""
    ops = current_app.extensions["pedro_ops"]
    results = ops.readiness.get()
    checks = {name: "ok" if reason is None else "unavailable" for name, reason in results.items()}
    failed = [name for name, reason in results.items() if reason is not None]
    problems = {"problems": found} if (found := setup_problems(ops.settings, results)) else {}
    if failed:
        detail = " and ".join(failed) + (" does not answer" if len(failed) == 1 else " do not answer")
        return jsonify(error="not_ready", detail=detail, checks=checks, **problems), 503
    return jsonify(status="ready", checks=checks, **problems), 200


@operations.get("/metrics")
def prometheus_metrics():
    body, content_type = current_app.extensions["pedro_ops"].metrics.get()
    return Response(body, status=200, content_type=content_type)


@operations.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.spec())
