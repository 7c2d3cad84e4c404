"""Error types that decide what happens to an event: retry it, or record it and stop."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError


class PermanentError(Exception):
    """The event cannot be applied as it is (bad payload, unresolvable reference): mark it `failed`.

    `code` is machine-readable (`invalid_payload`, `unlinked_payment`…); `detail` is for a human and must
    not contain secrets or personal data.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class TransientError(Exception):
    """A condition expected to clear by itself (a dependency down, a row not synced yet): retry later.

    Like `PermanentError`, it carries a stable `code` and a plain `detail` sentence without payload values.
    """

    def __init__(self, code: str = "transient_error", detail: str = "a condition expected to clear by itself") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def is_transient(error: BaseException) -> bool:
    """Connection loss, serialization failure, deadlock, lock and statement timeouts, and a task over its soft
    time limit (rolled back, then retried until the attempt budget is spent) are worth retrying."""
    if isinstance(error, TransientError | OperationalError | SoftTimeLimitExceeded):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated
