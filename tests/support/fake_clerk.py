"""A local HTTP server speaking the Clerk Backend API's `GET /v1/users` shapes, with fault injection.

Real sockets and a real HTTP client: the resync is tested against the protocol, not against mocks.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tests.support.json_fake import Answer, JsonFakeServer


class FakeClerk(JsonFakeServer):
    """Users in creation order; `faults` are (status, headers) answered, in order, before real pages."""

    def __init__(self, secret_key: str = "sk_test_fake") -> None:
        super().__init__()
        self.url = self.address
        self.secret_key = secret_key
        self.users: list[dict[str, Any]] = []
        self.faults: deque[tuple[int, dict[str, str]]] = deque()
        self.requests: list[tuple[str, dict[str, list[str]], int]] = []

    def respond(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any) -> Answer:
        status, answer_headers, answer = self._answer(path, query, headers.get("Authorization"))
        self.requests.append((path, query, status))
        return status, answer_headers, answer

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
