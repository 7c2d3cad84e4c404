"""Why an attempt did not apply, as an operator reads it: a stable code and one plain sentence.

The code goes to `lastError` (for filters, alerts and metrics), the sentence to `lastErrorDetail` (shown by
`events list/show`). Neither carries payload values. Where in the code an unexpected error came from (its
type and place) is for developers: it goes to the worker's log line, not into the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from workers.processing.errors import PermanentError, TransientError


@dataclass(frozen=True)
class Reason:
    code: str
    sentence: str


TIME_LIMIT = Reason(
    "time_limit", "the event took longer than TASK_SOFT_TIME_LIMIT to apply; its changes were rolled back"
)
HANDLER_ERROR = Reason("handler_error", "the handler failed unexpectedly (a bug); the worker log says where")

# PostgreSQL SQLSTATEs worth naming: https://www.postgresql.org/docs/current/errcodes-appendix.html
_BY_SQLSTATE = {
    "55P03": Reason(
        "lock_timeout", "a row this event needs stayed locked by another transaction past DB_LOCK_TIMEOUT_MS"
    ),
    "57014": Reason("statement_timeout", "a database statement ran longer than DB_STATEMENT_TIMEOUT_MS"),
    "40001": Reason("serialization_failure", "a concurrent transaction changed the same rows"),
    "40P01": Reason("deadlock", "the database broke a deadlock with another transaction"),
    "57P01": Reason("database_unavailable", "the database was restarting or shutting down"),
    "53300": Reason("database_unavailable", "the database had no free connection"),
}
_UNREACHABLE = Reason("database_unavailable", "the database could not be reached or dropped the connection")


def reason_for(error: BaseException) -> Reason:
    """The reason recorded for a failed attempt (`PermanentError` and `TransientError` carry their own)."""
    if isinstance(error, PermanentError | TransientError):
        return Reason(error.code, error.detail)
    if isinstance(error, SoftTimeLimitExceeded):
        return TIME_LIMIT
    if isinstance(error, DBAPIError):
        sqlstate = getattr(error.orig, "pgcode", None)
        if sqlstate in _BY_SQLSTATE:
            return _BY_SQLSTATE[sqlstate]
        lost = sqlstate is None and isinstance(error, OperationalError | InterfaceError)  # no server answer at all
        if error.connection_invalidated or lost or (sqlstate or "").startswith("08"):
            return _UNREACHABLE
    return HANDLER_ERROR
