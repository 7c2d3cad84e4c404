"""Why an attempt did not apply: its code (`models.status.Failure`) and this event's detail.

The code goes to `lastError` (for filters, alerts and metrics), the detail to `lastErrorDetail` (shown by
`events list/show`). Neither carries payload values. Where in the code an unexpected error came from (its
type and place) is for developers: it goes to the worker's log line, not into the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from models.status import Failure
from workers.processing.errors import PermanentError, TransientError


@dataclass(frozen=True)
class Reason:
    code: Failure
    sentence: str

    @classmethod
    def of(cls, code: Failure) -> Reason:
        return cls(code, code.sentence)


TIME_LIMIT = Reason.of(Failure.TIME_LIMIT)
HANDLER_ERROR = Reason.of(Failure.HANDLER_ERROR)

# PostgreSQL SQLSTATEs worth naming: https://www.postgresql.org/docs/current/errcodes-appendix.html
_BY_SQLSTATE = {
    "55P03": Reason.of(Failure.LOCK_TIMEOUT),
    "57014": Reason.of(Failure.STATEMENT_TIMEOUT),
    "40001": Reason.of(Failure.SERIALIZATION_FAILURE),
    "40P01": Reason.of(Failure.DEADLOCK),
    "57P01": Reason(Failure.DATABASE_UNAVAILABLE, "the database was restarting or shutting down"),
    "53300": Reason(Failure.DATABASE_UNAVAILABLE, "the database had no free connection"),
}
_UNREACHABLE = Reason(Failure.DATABASE_UNAVAILABLE, "the database could not be reached or dropped the connection")


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
