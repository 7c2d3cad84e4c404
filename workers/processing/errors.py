"""Error types that decide what happens to an event: retry it, or record it and stop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from models.status import Failure

# SQLSTATE class 22 (data exception: out of range, bad datetime…) and 54000 (program limit exceeded: an
# index row over its size limit): the same values fail the same way on every retry.
_NEVER_ON_RETRY = ("22", "54000")


class _Failed(Exception):
    """A failure that carries its code (`models.status.Failure`, so every code has a sentence) and a detail
    for this event: a sentence for a person, without secrets or payload values; the code's own sentence
    when the failure has nothing to add."""

    def __init__(self, code: Failure, detail: str | None = None) -> None:
        self.code = Failure.of(code)  # an unknown code fails here, where it is raised, not in a report
        self.detail = detail or self.code.sentence
        super().__init__(f"{self.code}: {self.detail}")


class PermanentError(_Failed):
    """The event cannot be applied as it is (bad payload, unresolvable reference): mark it `failed`."""


class IgnoredByPolicy(_Failed):
    """A settings policy says this event is not ours to apply (`ASAAS_UNLINKED_PAYMENTS=ignore`), or it moves
    no credits by design (`checkout_no_credits`, `checkout_pending`): it ends `ignored`, with `code` and `detail`
    kept so that it can be found and replayed. What the handler wrote before raising (a log row, a link)
    commits with the mark; a handler raises it before any credit change."""


class TransientError(_Failed):
    """A condition expected to clear by itself (a dependency down, a row not synced yet): retry later."""

    def __init__(self, code: Failure = Failure.TRANSIENT_ERROR, detail: str | None = None) -> None:
        super().__init__(code, detail)


class NeedsLookup(Exception):  # noqa: N818 - a request to the worker, not an error
    """The handler needs a provider's value that is not on record yet. The worker rolls the attempt back,
    calls `lookup(settings)` outside any transaction (a provider call never holds the event's row locks) and
    runs the attempt again with the value in `HandlerContext.lookups[key]`."""

    def __init__(self, key: str, lookup: Callable[[Any], object]) -> None:
        super().__init__(key)
        self.key = key
        self.lookup = lookup


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
