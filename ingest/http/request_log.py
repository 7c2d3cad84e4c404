"""Receiver observability: one structured log line per request and the webhook counters.

The webhook views name the stored event through `remember_event`; rejections are read from the error
code of the response, so every provider's endpoint is counted without code of its own. Nothing here
reads the request body or the signature headers.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from ingest.http.responses import recorded_outcome
from ingest.observability import metrics
from ingest.receiver.inbox_writer import Accepted

log = logging.getLogger("pedro_ingest.request")
WEBHOOK_PREFIX = "/webhooks/"
STARTED = "pedro.started"  # perf_counter() when the server handed the request over (`ingest.http.ports`)


def debug_enabled() -> bool:
    return log.isEnabledFor(logging.DEBUG)


def remember_event(accepted: Accepted) -> None:
    """Name the stored event on this request's log line (written at DEBUG only: skipped otherwise)."""
    if not debug_enabled():
        return
    g.pedro_event = {"event_id": accepted.event.event_id[:200], "event_type": metrics.label(accepted.event.event_type)}


def _provider() -> str | None:
    rule = request.url_rule.rule if request.url_rule else ""
    if not rule.startswith(WEBHOOK_PREFIX):
        return None
    return rule[len(WEBHOOK_PREFIX) :] or None


def _outcome(response: Response) -> str:
    recorded = recorded_outcome()  # set by every webhook and error response: no need to parse the body
    if recorded is not None:
        return recorded
    if response.status_code < 400:
        body = response.get_json(silent=True) if response.is_json else None
        return str((body or {}).get("status", "ok"))
    body = response.get_json(silent=True) if response.is_json else None
    return str((body or {}).get("error", "http_error"))


def install(app: Flask) -> None:
    """Count webhook rejections and write the request's log line (timed from `STARTED`, set by the port
    dispatch in production: one Flask hook less on every request)."""

    @app.after_request
    def _finish(response: Response) -> Response:
        status = response.status_code
        # An accepted delivery is recorded by its inbox row: its line is DEBUG, and at the production level
        # not even built. Refusals stay at INFO and are counted.
        if status < 400 and not debug_enabled():
            return response
        provider = _provider()
        outcome = _outcome(response)
        if provider and status >= 400:
            metrics.WEBHOOKS_REJECTED.labels(provider, metrics.label(outcome)).inc()
        fields = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "outcome": outcome,
            "duration_ms": round((time.perf_counter() - request.environ.get(STARTED, time.perf_counter())) * 1000, 2),
        }
        if provider:
            fields["provider"] = provider
        fields.update(g.get("pedro_event", {}))
        level = logging.DEBUG if status < 400 else logging.INFO
        log.log(level, "%s %s %s", request.method, request.path, status, extra=fields)
        return response
