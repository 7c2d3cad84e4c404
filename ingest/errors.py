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
