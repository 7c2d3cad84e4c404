"""Fast checks of the reliability settings and CLI parsing (no services needed)."""

from __future__ import annotations

import datetime as dt

import click
import pytest

from ingest.cli.events import parse_since
from ingest.config.settings import ConfigError, load_settings
from workers.processing.apply import max_attempts
from workers.providers.retry import backoff


def test_retry_backoff_must_stay_below_the_visibility_timeout() -> None:
    with pytest.raises(ConfigError, match="RETRY_BACKOFF_MAX must be below VISIBILITY_TIMEOUT"):
        load_settings(retry_backoff_max=3600, visibility_timeout=3600)
    assert load_settings(retry_backoff_max=3599, visibility_timeout=3600).retry_backoff_max == 3599


def test_attempt_budget_and_backoff_bounds() -> None:
    assert max_attempts(load_settings(task_max_retries=3)) == 4
    for attempt in range(1, 30):
        wait = backoff(attempt, cap=600)
        assert 0.5 * min(600, 2 ** (attempt - 1)) <= wait <= min(600, 2 ** (attempt - 1))


def test_since_accepts_durations_and_iso_times() -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert abs((now - parse_since("2h")) - dt.timedelta(hours=2)) < dt.timedelta(seconds=5)
    assert parse_since("2026-01-31T12:00") == dt.datetime(2026, 1, 31, 12, 0)
    assert parse_since("2026-01-31T12:00+02:00") == dt.datetime(2026, 1, 31, 10, 0)
    assert parse_since(None) is None
    with pytest.raises(click.BadParameter):
        parse_since("yesterday")
