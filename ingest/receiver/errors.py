"""Why a webhook request was refused: an HTTP status, a machine-readable code and a safe detail."""

from __future__ import annotations


class WebhookRejected(Exception):
    """Raised anywhere on the request path; the app turns it into `{"error", "detail"}` JSON.

    `detail` is written for the sender's operator: it never contains a secret or the request body.
    """

    def __init__(self, status: int, code: str, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class UnstorableBody(WebhookRejected):
    """PostgreSQL refused the JSON (for example a `\\u0000` escape, which jsonb cannot hold)."""

    def __init__(self) -> None:
        super().__init__(400, "invalid_json", "body is JSON that PostgreSQL cannot store")
