"""What every CLI module shares: the one-line failure and settings loaded or a clean exit.

Kept apart from `ingest.cli` so that command modules never import the entry point (under
`python -m ingest.cli` that module would be loaded a second time).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from ingest.config.settings import ConfigError, Settings, get_settings


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, a non-zero exit, never a traceback."""
    click.echo(f"pedro-ingest: {message}", err=True)
    sys.exit(code)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as error:
        fail(str(error))
