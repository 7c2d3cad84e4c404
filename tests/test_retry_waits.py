"""The one backoff rule and the one wait-header parser the worker and both API clients use (no services)."""

from __future__ import annotations

import datetime as dt

import pytest

from workers.providers.retry import backoff, header_wait, parse_wait

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "expected"), [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("1.5", 1.5)])
def test_seconds(value: str, expected: float) -> None:
    assert parse_wait(value, cap=600, now=NOW) == expected


def test_http_dates_in_every_form_rfc_9110_allows() -> None:
    assert parse_wait("Sun, 01 Mar 2026 12:01:30 GMT", cap=600, now=NOW) == 90.0
    assert parse_wait("Sunday, 01-Mar-26 12:01:30 GMT", cap=600, now=NOW) == 90.0
    assert parse_wait("Sun Mar  1 12:01:30 2026", cap=600, now=NOW) == 90.0


def test_a_date_in_the_past_means_no_wait() -> None:
    assert parse_wait("Sun, 01 Mar 2026 11:00:00 GMT", cap=600, now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "nan", "12s", "Mon, 99 Foo 2026", "-5", "-0.1"])
def test_garbage_and_negative_values_fall_back_to_the_callers_backoff(value: str | None) -> None:
    assert parse_wait(value, cap=600, now=NOW) is None


@pytest.mark.parametrize("value", ["86400", "inf", "1e300", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_every_wait_is_capped(value: str) -> None:
    assert parse_wait(value, cap=600, now=NOW) == 600.0


def test_the_first_usable_header_wins() -> None:
    headers = {"RateLimit-Reset": "garbage", "Retry-After": "30"}
    assert header_wait(headers, ("RateLimit-Reset", "Retry-After"), cap=600, now=NOW) == 30.0
    assert header_wait({"RateLimit-Reset": "5", "Retry-After": "30"}, ("RateLimit-Reset", "Retry-After"), cap=600) == 5
    assert header_wait({}, ("RateLimit-Reset", "Retry-After"), cap=600) is None


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    for attempt in range(1, 200):
        ceiling = min(60.0, 0.25 * 2 ** min(attempt - 1, 30))
        assert 0.5 * ceiling <= backoff(attempt, cap=60, base=0.25) <= ceiling
    assert backoff(0, cap=60) <= 1.0  # an attempt number below 1 waits like the first
