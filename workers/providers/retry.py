"""How long to wait before trying again: exponential backoff with jitter, and the servers' own wait headers.

The worker's event retries and both API clients share these two rules, so a change of policy (the jitter's
spread, how a header is read, the longest wait we accept) happens once. Pure functions, no imports of ours.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
from collections.abc import Iterable, Mapping

_MAX_EXPONENT = 30  # 2**30 seconds is already decades: keeps the float finite for any attempt number


def backoff(attempt: int, *, cap: float, base: float = 1.0) -> float:
    """`base`·2^(attempt-1) seconds capped at `cap`, times a random factor in [0.5, 1] so that many clients
    failing together do not retry together."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    return random.uniform(0.5, 1.0) * min(cap, base * 2.0**exponent)


def parse_wait(value: str | None, *, cap: float, now: dt.datetime | None = None) -> float | None:
    """A wait header's value in seconds, at most `cap`: delay-seconds (`120`) or an HTTP date (RFC 9110's
    `Retry-After` allows both). None when the value is absent, negative or not a number nor a date, so the
    caller falls back to its own backoff; a date in the past means no wait."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _until_date(text, cap, now)
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, cap)


def header_wait(
    headers: Mapping[str, str], names: Iterable[str], *, cap: float, now: dt.datetime | None = None
) -> float | None:
    """The first of the named headers that holds a usable wait (see `parse_wait`), else None."""
    for name in names:
        wait = parse_wait(headers.get(name), cap=cap, now=now)
        if wait is not None:
            return wait
    return None


def _until_date(text: str, cap: float, now: dt.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone: HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    return min(max(0.0, (when - current).total_seconds()), cap)
