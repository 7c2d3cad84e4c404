"""The JSON error answers both apps give: `{"error": "<code>", "detail": "..."}`, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from ingest.http.responses import json_response
from ingest.observability.error_origin import error_origin
from ingest.receiver.errors import WebhookRejected

log = logging.getLogger("ingest.http.app")
HTTP_CODES = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}


def error_response(status: int, code: str, detail: str, retry_after: int | None = None):
    response = json_response(status, code, {"error": code, "detail": detail})
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(WebhookRejected)
    def rejected(error: WebhookRejected):
        return error_response(error.status, error.code, error.detail, error.retry_after)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = HTTP_CODES.get(error.code or 500, "http_error")
        return error_response(error.code or 500, code, error.description or code)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        origin = error_origin(error)  # type and place only: a message could quote the body
        log.error("unexpected error in receiver", extra={"error_type": origin.error_type, "error_at": origin.location})
        return error_response(500, "internal_error", "unexpected error; the event was not acknowledged")
