"""A local HTTP server speaking the Clerk Backend API's `GET /v1/users` shapes, with fault injection.

Real sockets and a real HTTP client: the resync is tested against the protocol, not against mocks.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    """Answer one request of a fake API with a JSON body."""
    payload = json.dumps(body).encode()
    handler.send_response(status)
    for key, value in {**(headers or {}), "Content-Type": "application/json"}.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


class FakeClerk:
    """Users in creation order; `faults` are (status, headers) answered, in order, before real pages."""

    def __init__(self, secret_key: str = "sk_test_fake") -> None:
        self.secret_key = secret_key
        self.users: list[dict[str, Any]] = []
        self.faults: deque[tuple[int, dict[str, str]]] = deque()
        self.requests: list[tuple[str, dict[str, list[str]], int]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                status, headers, body = fake._answer(parts.path, query, self.headers.get("Authorization"))
                fake.requests.append((parts.path, query, status))
                send_json(self, status, body, headers)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, path: str, query: dict[str, list[str]], auth: str | None) -> tuple[int, dict[str, str], Any]:
        if auth != f"Bearer {self.secret_key}":
            return 401, {}, {"errors": [{"code": "authentication_invalid", "message": "Unauthorized request"}]}
        if path != "/v1/users":
            return 404, {}, {"errors": [{"code": "resource_not_found", "message": "not found"}]}
        if self.faults:
            status, headers = self.faults.popleft()
            return status, headers, {"errors": [{"code": "injected", "message": f"injected {status}"}]}
        limit = int(query.get("limit", ["10"])[0])
        offset = int(query.get("offset", ["0"])[0])
        if not 1 <= limit <= 500:
            return 422, {}, {"errors": [{"code": "form_param_value_invalid", "message": "limit"}]}
        ordered = sorted(self.users, key=lambda u: u["created_at"], reverse=query.get("order_by") == ["-created_at"])
        return 200, {}, ordered[offset : offset + limit]

    def __enter__(self) -> FakeClerk:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def clerk_api_user(
    clerk_id: str, *, email: str, first_name: str, updated_at: int, created_at: int | None = None
) -> dict[str, Any]:
    """A Backend API user object (the fields pedro-ingest reads, plus some it ignores)."""
    return {
        "id": clerk_id,
        "object": "user",
        "username": None,
        "first_name": first_name,
        "last_name": "Tester",
        "image_url": "https://img.clerk.com/x",
        "primary_email_address_id": f"idn_{clerk_id}",
        "email_addresses": [{"id": f"idn_{clerk_id}", "object": "email_address", "email_address": email}],
        "banned": False,
        "locked": False,
        "created_at": created_at or updated_at,
        "updated_at": updated_at,
        "last_sign_in_at": None,
    }
