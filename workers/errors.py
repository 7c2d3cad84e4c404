"""Error types that decide what happens to an event: retry it, or record it and stop."""

from __future__ import annotations

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
    """A condition expected to clear by itself (a dependency down, a lock timeout): retry later."""


def is_transient(error: BaseException) -> bool:
    """Connection loss, serialization failure, deadlock and lock timeouts are worth retrying."""
    if isinstance(error, TransientError | OperationalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated
