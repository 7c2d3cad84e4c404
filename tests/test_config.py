"""A missing or malformed setting stops a process at start with one line naming it, never a traceback."""

from __future__ import annotations

import os
import subprocess

import pytest

from ingest.config.settings import ConfigError, load_settings
from tests.support.processes import cli_argv


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CLERK_WEBHOOK_SECRET"}}
    clean.update(env)
    return subprocess.run(cli_argv(*args), env=clean, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
def test_missing_database_url_is_one_line(command: str) -> None:
    result = run_cli(command)
    assert result.returncode == 2
    assert result.stderr.strip() == "pedro-ingest: configuration error: DATABASE_URL is missing"
    assert "Traceback" not in result.stderr + result.stdout


def test_malformed_secret_is_named_without_echoing_it() -> None:
    result = run_cli("worker", DATABASE_URL="postgresql://localhost/x", CLERK_WEBHOOK_SECRET="sk_live_oops123")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CLERK_WEBHOOK_SECRET" in lines[0]
    assert "sk_live_oops123" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"database_url": "mysql://localhost/x"}, "DATABASE_URL"),
        ({"celery_broker_url": "amqp://localhost"}, "CELERY_BROKER_URL"),
        ({"max_body_bytes": "lots"}, "MAX_BODY_BYTES"),
        ({"clerk_webhook_secret": "whsec_%%%"}, "CLERK_WEBHOOK_SECRET"),
    ],
)
def test_malformed_values_name_the_variable(overrides: dict, name: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(**overrides)
    assert str(error.value).startswith(f"configuration error: {name}")


def test_unreachable_database_is_one_line() -> None:
    result = run_cli("migrate", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    assert result.returncode == 2
    assert result.stderr.startswith("pedro-ingest: database unreachable:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("spelling", ["debug", "Debug", " DEBUG "])
def test_log_level_is_accepted_in_any_case(spelling: str) -> None:
    assert load_settings(database_url="postgresql://localhost/x", log_level=spelling).log_level == "DEBUG"
