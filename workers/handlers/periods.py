"""A paid period from a provider's payload: Asaas due date plus cycle, Clerk's item period (UTC)."""

from __future__ import annotations

import calendar
import datetime as dt

from models.ledger import Period

MONTHS = {"MONTHLY": 1, "BIMONTHLY": 2, "QUARTERLY": 3, "SEMIANNUALLY": 6, "YEARLY": 12}
DAYS = {"WEEKLY": 7, "BIWEEKLY": 14}


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months; the 31st of January plus one month is the last day of February."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def asaas_period(due_date: str | None, cycle: str | None) -> Period | None:
    """`[dueDate, dueDate + cycle)`; a cycle not known (yet) counts as MONTHLY. None without a valid due date."""
    try:
        start = dt.date.fromisoformat(due_date or "")
    except ValueError:
        return None
    cycle = (cycle or "MONTHLY").upper()
    end = start + dt.timedelta(days=DAYS[cycle]) if cycle in DAYS else add_months(start, MONTHS.get(cycle, 1))
    return Period(dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time()))


def clerk_period(period_start: int | None, period_end: int | None) -> Period | None:
    """Clerk's `period_start` / `period_end` (epoch milliseconds); None unless both are there."""
    if period_start is None or period_end is None or period_end <= period_start:
        return None

    def to_utc(ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)

    return Period(to_utc(period_start), to_utc(period_end))
