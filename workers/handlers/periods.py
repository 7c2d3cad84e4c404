"""A paid period from a provider's payload: Asaas due date plus cycle, Clerk's item period (UTC)."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy.orm import Session

from models import billing_links, ledger
from models.ledger import Period
from workers.handlers.asaas_payloads import AsaasPayment

MONTHS = {"MONTHLY": 1, "BIMONTHLY": 2, "QUARTERLY": 3, "SEMIANNUALLY": 6, "YEARLY": 12}
DAYS = {"WEEKLY": 7, "BIWEEKLY": 14}


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months; the 31st of January plus one month is the last day of February."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def known_cycle(cycle: str | None) -> str | None:
    """An Asaas subscription cycle pedro-ingest knows (`WEEKLY` … `YEARLY`), else None."""
    cycle = (cycle or "").strip().upper()
    return cycle if cycle in MONTHS or cycle in DAYS else None


def cycle_end(start: dt.datetime, cycle: str | None) -> dt.datetime:
    """The end of a period of `cycle` (not known: MONTHLY) that starts at `start`, in calendar terms."""
    cycle = known_cycle(cycle) or "MONTHLY"
    if cycle in DAYS:
        return start + dt.timedelta(days=DAYS[cycle])
    return dt.datetime.combine(add_months(start.date(), MONTHS[cycle]), start.time())


def _asaas_date(raw: str | None) -> dt.date | None:
    """Asaas writes `YYYY-MM-DD` in payments and `DD/MM/YYYY` in some subscription fields."""
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime((raw or "").strip(), pattern).date()
        except ValueError:
            continue
    return None


def asaas_period(
    due_date: str | None, cycle: str | None, *, next_due_date: str | None = None, subscription_id: str | None = None
) -> Period | None:
    """`[dueDate, dueDate + cycle)`; `nextDueDate` only when there is no `dueDate`. A cycle not known (yet)
    counts as MONTHLY and the period is provisional (`subscription_id`'s event corrects it). None without a
    valid date."""
    day = _asaas_date(due_date) if due_date else _asaas_date(next_due_date)
    if day is None:
        return None
    start = dt.datetime.combine(day, dt.time())
    provisional = subscription_id if known_cycle(cycle) is None else None
    return Period(start, cycle_end(start, cycle), provisional_of=provisional)


def clerk_period(period_start: int | None, period_end: int | None) -> Period | None:
    """Clerk's `period_start` / `period_end` (epoch milliseconds); None unless both are there."""
    if period_start is None or period_end is None or period_end <= period_start:
        return None
    return Period(_utc(period_start), _utc(period_end))


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


def asaas_payment_period(session: Session, payment: AsaasPayment) -> Period | None:
    """A subscription payment's period, with the cycle its subscription's events stored (if any yet); the
    subscription's lock keeps the event that stores the cycle from correcting lots before this one is marked."""
    if not payment.subscription:
        return None
    ledger.lock_subscription(session, payment.subscription)
    link = billing_links.subscription_link(session, payment.subscription)
    cycle = link.cycle if link is not None else None
    return asaas_period(payment.dueDate, cycle, next_due_date=payment.nextDueDate, subscription_id=payment.subscription)
