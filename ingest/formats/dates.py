"""Provider dates, parsed defensively in one place.

Asaas sends naive local times in several shapes (`2024-06-12 16:45:03`, `2021-01-01`, `16/10/2024`) in
Brasília time (UTC-3, no daylight saving since 2019). Clerk sends epoch numbers in either unit: live
deliveries carry milliseconds, the examples of its OpenAPI document (the dashboard's "Send example")
carry the envelope `timestamp` in seconds. Everything is returned as naive UTC, the way Prisma stores
`DateTime` columns. Unparseable input gives None, never an exception: a date is context, and a strange
one must not lose the event. Versions (`epoch_millis`) are stricter: they order writes, so a value
outside the calendar is refused rather than guessed.
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
# Epoch numbers above this are milliseconds (year 2286 in seconds; 1970-04-26 in milliseconds).
_MILLISECONDS_FROM = 10_000_000_000
# 9999-12-31T23:59:59.999Z: the last instant a `DateTime` column (and Python) can hold.
MAX_EPOCH_MILLIS = 253_402_300_799_999


def epoch_millis(value: object) -> int | None:
    """Epoch milliseconds for an epoch number in seconds or milliseconds; None when it is not one.

    Numbers below 10^10 are seconds (Clerk's examples), above are milliseconds (live deliveries); a value
    past year 9999 (`updated_at` of 10^20) or negative is not a moment at all.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    if abs(value) > MAX_EPOCH_MILLIS:
        return None
    millis = int(value) if abs(value) >= _MILLISECONDS_FROM else int(value * 1000)
    return millis if 0 <= millis <= MAX_EPOCH_MILLIS else None


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
        millis = epoch_millis(value)
        if millis is None:
            return None
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=millis)
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
