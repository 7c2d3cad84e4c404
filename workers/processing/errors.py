"""Error types that decide what happens to an event: retry it, or record it and stop."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

# SQLSTATE class 22 (data exception: out of range, bad datetime…) and 54000 (program limit exceeded: an
# index row over its size limit): the same values fail the same way on every retry.
_NEVER_ON_RETRY = ("22", "54000")


class PermanentError(Exception):
    """The event cannot be applied as it is (bad payload, unresolvable reference): mark it `failed`.

    `code` is machine-readable (`invalid_payload`, `unlinked_payment`…); `detail` is for a human and must
    not contain secrets or personal data.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class IgnoredByPolicy(Exception):
    """A settings policy says this event is not ours to apply (`ASAAS_UNLINKED_PAYMENTS=ignore`), or it moves
    no credits by design (`checkout_no_credits`, `checkout_pending`): it ends `ignored`, with `code` and `detail`
    kept so that it can be found and replayed. What the handler wrote before raising (a log row, a link)
    commits with the mark; a handler raises it before any credit change."""

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
    time limit (rolled back, then retried until the attempt budget is spent) are worth retrying. psycopg2 also
    reports an oversize index row as an `OperationalError`: that one is not."""
    if never_succeeds(error):
        return False
    if isinstance(error, TransientError | OperationalError | SoftTimeLimitExceeded):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def never_succeeds(error: BaseException) -> bool:
    """Database errors caused by the values themselves (`DataError`, an index row too large): permanent."""
    if isinstance(error, DataError):
        return True
    code = getattr(getattr(error, "orig", None), "pgcode", None) or ""
    return isinstance(error, DBAPIError) and code.startswith(_NEVER_ON_RETRY)
