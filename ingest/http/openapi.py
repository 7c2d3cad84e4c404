"""The receiver's OpenAPI 3.1 description, served at `/openapi.json` and checked against the routes by tests.

Each provider endpoint is one `webhook_operation(...)` entry in `PATHS`: adding a provider is one entry.
"""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def error_response(description: str, codes: list[str], *, retry_after: bool = False) -> dict[str, Any]:
    schema = {
        "allOf": [ERROR, {"properties": {"error": {"enum": codes}}}],
    }
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if retry_after:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}
        }
    return response


def webhook_operation(
    provider: str, summary: str, headers: list[dict[str, Any]], unauthorized: list[str]
) -> dict[str, Any]:
    """POST /webhooks/<provider>: verify → store once → enqueue; the answers every provider shares."""
    return {
        "post": {
            "operationId": f"receive_{provider}",
            "summary": summary,
            "tags": ["webhooks"],
            "parameters": headers,
            "requestBody": {
                "required": True,
                "description": "The provider's event, verified on the raw bytes before parsing.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {
                    "description": "Stored (or already stored): the provider may consider it delivered.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                },
                "400": error_response(
                    "Malformed request.",
                    ["missing_headers", "invalid_header", "invalid_json", "missing_event_type", "malformed_body"],
                ),
                "401": error_response("Not authentic, or replayed/too old.", unauthorized),
                "408": error_response(
                    "The body did not arrive within BODY_TIMEOUT; the connection is closed.", ["body_timeout"]
                ),
                "413": error_response("Body larger than MAX_BODY_BYTES (also when chunked).", ["body_too_large"]),
                "415": error_response("Content-Type is not application/json.", ["unsupported_media_type"]),
                "503": error_response(
                    "Not stored: retry later.",
                    ["database_unavailable", "provider_not_configured", "server_busy"],
                    retry_after=True,
                ),
            },
        }
    }


def asaas_operation() -> dict[str, Any]:
    """Asaas counts only 200 as delivered: an authentic body we cannot parse is stored `failed` and answered
    200, so there is no 400 or 415; the token is checked first, and an optional IP allow-list answers 403."""
    operation = webhook_operation(
        "asaas",
        "Asaas webhook (static access token)",
        [header("asaas-access-token", "The token configured in Asaas; compared in constant time.")],
        ["missing_token", "invalid_token"],
    )
    responses = operation["post"]["responses"]
    del responses["415"]
    responses["400"] = error_response(
        "Content-Length is not a number, or the chunked framing is malformed.", ["invalid_header", "malformed_body"]
    )
    responses["403"] = error_response("Source address not in ASAAS_ALLOWED_IPS.", ["ip_not_allowed"])
    operation["post"]["requestBody"]["content"] = {"*/*": {"schema": {}}}
    return operation


def header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "description": description, "schema": {"type": "string"}}


def json_get(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "summary": summary, "tags": ["operations"], "responses": responses}}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


READINESS = {
    "type": "object",
    "required": ["checks"],
    "properties": {
        "status": {"const": "ready"},
        "error": {"const": "not_ready"},
        "detail": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "string"}, "description": "What to fix, per setting."},
        "checks": {
            "type": "object",
            "required": ["database", "broker"],
            "properties": {
                "database": {"enum": ["ok", "unavailable"]},
                "broker": {"enum": ["ok", "unavailable"]},
            },
        },
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/webhooks/clerk": webhook_operation(
        "clerk",
        "Clerk (Svix-signed) webhook",
        [
            header("svix-id", "Svix message id: the dedupe key."),
            header("svix-timestamp", "Unix seconds; more than 5 minutes away is refused."),
            header("svix-signature", "`v1,<base64>` signatures, space-separated."),
        ],
        ["invalid_signature", "timestamp_out_of_tolerance"],
    ),
    "/webhooks/asaas": asaas_operation(),
    "/healthz": json_get(
        "healthz",
        "Liveness (both ports): the process answers (no I/O).",
        {"200": {"description": "Alive.", "content": json_content({"type": "object", "required": ["status"]})}},
    ),
    "/readyz": json_get(
        "readyz",
        "Readiness (operations port): PostgreSQL and the broker answer within READY_TIMEOUT.",
        {
            "200": {"description": "Both answer.", "content": json_content(READINESS)},
            "503": {"description": "The named dependency does not answer.", "content": json_content(READINESS)},
        },
    ),
    "/metrics": json_get(
        "metrics",
        "Prometheus metrics (operations port; text exposition format).",
        {"200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    ),
    "/openapi.json": json_get(
        "openapi",
        "This document (operations port).",
        {"200": {"description": "OpenAPI 3.1 document.", "content": json_content({"type": "object"})}},
    ),
}

COMPONENTS = {
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        },
        "Accepted": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["accepted", "duplicate"]},
                "id": {"type": "string", "description": "Inbox row id (new events only)."},
                "enqueued": {"type": "boolean", "description": "False: stored, the sweeper enqueues it later."},
            },
        },
    }
}


def spec(version: str = "0.1.0") -> dict[str, Any]:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pedro-ingest receiver",
            "version": version,
            "description": "Verified webhook intake for Clerk and Asaas; every error is `{error, detail}`.",
        },
        "paths": PATHS,
        "components": COMPONENTS,
    }
