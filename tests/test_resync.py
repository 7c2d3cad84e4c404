"""Clerk user resync against a local HTTP server speaking the Backend API (pagination, 429, 5xx, 401)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, text

from ingest.config.settings import get_settings
from models.db import transaction
from tests.support.fake_clerk import FakeClerk, clerk_api_user
from workers.handlers.clerk_payloads import ClerkUser
from workers.handlers.clerk_users import apply_clerk_user
from workers.jobs.resync import resync_users
from workers.providers.clerk_api import ClerkUsersApi


def api_for(fake: FakeClerk, **kwargs: object) -> ClerkUsersApi:
    options = {"page_size": 2, "backoff_base": 0.01, "max_attempts": 4, **kwargs}
    return ClerkUsersApi(fake.url, fake.secret_key, **options)  # type: ignore[arg-type]


T = 1_716_883_200_000  # Clerk times are epoch milliseconds (small numbers would be read as seconds)


def webhook_applied(engine: Engine, clerk_id: str, *, name: str, version: int) -> None:
    """What the webhook handler did earlier for this user (same function, same version rules)."""
    with transaction(engine) as session:
        user = ClerkUser(id=clerk_id, first_name=name, last_name="Tester", updated_at=version)
        assert apply_clerk_user(session, user, version, "evt", 100)


def user_row(engine: Engine, clerk_id: str) -> tuple | None:
    with engine.connect() as c:
        return c.execute(
            text(
                """SELECT u.name, u.email, b."creditsRemaining",
                          (SELECT count(*) FROM "UsageHistory" h WHERE h."userId" = u.id)
                     FROM "User" u LEFT JOIN "CreditBalance" b ON b."userId" = u.id WHERE u."clerkId" = :c"""
            ),
            {"c": clerk_id},
        ).one_or_none()


@pytest.fixture
def fake() -> FakeClerk:
    with FakeClerk() as server:
        yield server


def test_resync_creates_missed_updates_stale_and_keeps_newer(engine: Engine, fake: FakeClerk) -> None:
    webhook_applied(engine, "user_stale", name="Old", version=T + 1_000)
    webhook_applied(engine, "user_newer", name="Webhook", version=T + 9_000)
    fake.users = [
        clerk_api_user("user_missed", email="missed@example.org", first_name="Missed", updated_at=T + 500),
        clerk_api_user("user_stale", email="stale@example.org", first_name="Fresh", updated_at=T + 2_000, created_at=T),
        clerk_api_user(
            "user_newer", email="newer@example.org", first_name="Snapshot", updated_at=T + 8_000, created_at=T + 1
        ),
    ]
    report = resync_users(api=api_for(fake))

    assert (report.status, report.pages, report.seen, report.applied, report.stale) == ("done", 2, 3, 2, 1)
    assert user_row(engine, "user_missed") == ("Missed Tester", "missed@example.org", 100, 1), "created with grant"
    assert user_row(engine, "user_stale") == ("Fresh Tester", "stale@example.org", 100, 1), "updated, no 2nd grant"
    assert user_row(engine, "user_newer") == ("Webhook Tester", None, 100, 1), "older snapshot did not regress it"
    assert [q["offset"] for _, q, _ in fake.requests] == [["0"], ["2"]]

    again = resync_users(api=api_for(fake))
    assert (again.applied, again.stale) == (0, 3), "a second resync changes nothing"


def test_resync_survives_429_and_5xx(engine: Engine, fake: FakeClerk) -> None:
    fake.users = [
        clerk_api_user(f"user_{n}", email=f"u{n}@example.org", first_name=f"N{n}", updated_at=100 + n) for n in range(5)
    ]
    fake.faults.extend([(429, {"Retry-After": "1"}), (503, {}), (500, {}), (429, {"Retry-After": "0"})])
    report = resync_users(api=api_for(fake, max_attempts=5))
    assert (report.status, report.applied, report.pages) == ("done", 5, 3)
    assert [status for *_, status in fake.requests] == [429, 503, 500, 429, 200, 200, 200]
    assert all(user_row(engine, f"user_{n}") is not None for n in range(5))


def test_resync_gives_up_cleanly_when_5xx_persists(engine: Engine, fake: FakeClerk) -> None:
    fake.users = [clerk_api_user("user_a", email="a@example.org", first_name="A", updated_at=1)]
    fake.faults.extend([(502, {})] * 10)
    report = resync_users(api=api_for(fake, max_attempts=3))
    assert (report.status, report.applied) == ("failed", 0)
    assert len(fake.requests) == 3


def test_resync_stops_on_401_without_retrying(engine: Engine, fake: FakeClerk, caplog) -> None:
    fake.users = [clerk_api_user("user_a", email="a@example.org", first_name="A", updated_at=1)]
    api = ClerkUsersApi(fake.url, "sk_test_wrong_key", backoff_base=0.01)
    with caplog.at_level(logging.INFO):
        report = resync_users(api=api)
    assert report.status == "unauthorized"
    assert len(fake.requests) == 1
    assert user_row(engine, "user_a") is None
    assert "sk_test_wrong_key" not in caplog.text


def test_resync_is_skipped_without_a_key(engine: Engine, caplog) -> None:
    settings = get_settings()
    assert settings.clerk_secret_key is None
    with caplog.at_level(logging.INFO, logger="workers.jobs.resync"):
        report = resync_users(settings=settings)
    assert report.status == "skipped_no_key"
    assert [r.getMessage() for r in caplog.records] == ["resync skipped: CLERK_SECRET_KEY is not set"]


def test_resync_cli_uses_the_configured_url_and_key(engine: Engine, fake: FakeClerk, monkeypatch) -> None:
    from click.testing import CliRunner

    from ingest.cli import main

    fake.users = [clerk_api_user("user_cli", email="cli@example.org", first_name="Cli", updated_at=7)]
    monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
    monkeypatch.setenv("CLERK_API_URL", fake.url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["resync-users"])
    finally:
        monkeypatch.delenv("CLERK_SECRET_KEY")
        monkeypatch.delenv("CLERK_API_URL")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "applied 1" in result.output
    assert user_row(engine, "user_cli") == ("Cli Tester", "cli@example.org", 100, 1)
