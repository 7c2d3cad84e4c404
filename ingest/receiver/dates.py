"""Provider dates, parsed defensively in one place.

Asaas sends naive local times in several shapes (`2024-06-12 16:45:03`, `2021-01-01`, `16/10/2024`) in
Brasília time (UTC-3, no daylight saving since 2019); Clerk sends epoch milliseconds. Everything is
returned as naive UTC, the way Prisma stores `DateTime` columns. Unparseable input gives None, never an
exception: a date is context, and a strange one must not lose the event.
"""

from __future__ import annotations

import datetime as dt

BRASILIA = dt.timezone(dt.timedelta(hours=-3), "BRT")
_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
)
# Epoch numbers above this are milliseconds (year 2286 in seconds).
_MILLISECONDS_FROM = 10_000_000_000


def _naive_utc(moment: dt.datetime, local: dt.tzinfo) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local)
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def parse_date(value: object, *, local: dt.tzinfo = BRASILIA) -> dt.datetime | None:
    """Naive UTC for a provider date (string in a known format, ISO 8601, or epoch s/ms); None otherwise.

    Naive strings are read in `local` (Brasília for Asaas).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= _MILLISECONDS_FROM else value
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 40:
        return None
    for pattern in _FORMATS:
        try:
            return _naive_utc(dt.datetime.strptime(text, pattern), local)
        except ValueError:
            continue
    try:
        return _naive_utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), local)
    except ValueError:
        return None
