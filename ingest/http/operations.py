"""Operations endpoints: readiness, Prometheus metrics and the OpenAPI document. No logic lives here."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ingest.http import openapi, readiness
from ingest.observability import metrics

operations = Blueprint("operations", __name__)


@operations.get("/readyz")
def readyz():
    """503 naming what does not answer, so an orchestrator stops routing webhooks here."""
    ops = current_app.extensions["pedro_ops"]
    results = readiness.check(ops.engine, ops.settings.celery_broker_url, ops.settings.ready_timeout)
    checks = {name: "ok" if ok else "unavailable" for name, ok in results.items()}
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        detail = " and ".join(failed) + (" does not answer" if len(failed) == 1 else " do not answer")
        return jsonify(error="not_ready", detail=detail, checks=checks), 503
    return jsonify(status="ready", checks=checks), 200


@operations.get("/metrics")
def prometheus_metrics():
    body, content_type = metrics.render(current_app.extensions["pedro_ops"].backlog)
    return Response(body, status=200, content_type=content_type)


@operations.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.spec())
