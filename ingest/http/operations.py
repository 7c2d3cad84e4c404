"""Operations endpoints: readiness, Prometheus metrics and the OpenAPI document. No logic lives here.

They are served by the operations app only (`ingest.http.operations_app`), on a port of their own.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ingest.http import openapi

operations = Blueprint("operations", __name__)


@operations.get("/readyz")
def readyz():
    """503 naming what does not answer, so an orchestrator stops routing webhooks here."""
    results = current_app.extensions["pedro_ops"].readiness.get()
    checks = {name: "ok" if ok else "unavailable" for name, ok in results.items()}
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        detail = " and ".join(failed) + (" does not answer" if len(failed) == 1 else " do not answer")
        return jsonify(error="not_ready", detail=detail, checks=checks), 503
    return jsonify(status="ready", checks=checks), 200


@operations.get("/metrics")
def prometheus_metrics():
    body, content_type = current_app.extensions["pedro_ops"].metrics.get()
    return Response(body, status=200, content_type=content_type)


@operations.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.spec())
