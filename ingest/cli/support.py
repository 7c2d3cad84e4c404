"""What every CLI module shares: the one-line failure and settings loaded or a clean exit.

Kept apart from `ingest.cli` so that command modules never import the entry point (under
`python -m ingest.cli` that module would be loaded a second time).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ingest.dev import state

if TYPE_CHECKING:
    from ingest.config.settings import Settings


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, a non-zero exit, never a traceback."""
    click.echo(f"pedro-ingest: {message}", err=True)
    sys.exit(code)


def note(message: str) -> None:
    click.echo(f"pedro-ingest: {message}", err=True)


def use_running_dev(state_dir: Path | None = None) -> state.DevRun | None:
    """Point this process at the `dev` running in this folder when the environment names no other database.

    A `DATABASE_URL` that is the dev's own (or none) takes the dev's broker too, so that `replay` never
    publishes to a default Redis the dev's worker does not read.
    """
    from ingest.config.settings import get_settings

    run = state.running(state_dir or state.state_dir_from_env())
    database_url = os.environ.get("DATABASE_URL")
    if run is None or (database_url and database_url != run.database_url):
        return None
    os.environ.setdefault("DATABASE_URL", run.database_url)
    os.environ.setdefault("CELERY_BROKER_URL", run.broker_url)
    get_settings.cache_clear()
    return run


def settings_or_exit(*, publishes: bool = False) -> Settings:
    """Settings from the environment (or the running dev); `publishes`: say so when the broker is the default."""
    from ingest.config.settings import ConfigError, get_settings

    use_running_dev()
    try:
        settings = get_settings()
    except ConfigError as error:
        fail(str(error))
    if publishes and not os.environ.get("CELERY_BROKER_URL"):
        note(f"CELERY_BROKER_URL is not set: publishing to the default broker {settings.celery_broker_url}")
    return settings


def untruncated_short_help(command: click.Command) -> None:
    """Command lists show each command's whole first paragraph, wrapped, instead of click's cut with `...`."""
    if command.help and not command.short_help:
        command.short_help = " ".join(command.help.strip().split("\n\n", 1)[0].split())
    for child in getattr(command, "commands", {}).values():
        untruncated_short_help(child)
