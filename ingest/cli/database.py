"""Schema commands: `migrate` (Alembic, adopting what the web app's Prisma migrations created; `--downgrade`
to go back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ingest.cli.support import fail, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.exc import OperationalError

    from ingest.config.settings import Settings


def database_error(error: OperationalError, database_url: str) -> str:
    """One line: a missing database is named as such (it is not "unreachable"), anything else as unreachable."""
    from ingest.config.database import connect_problem

    return connect_problem(error, database_url)


def _check_target(database_url: str, revision: str, downgrade: bool) -> None:
    """An unknown revision, the Prisma tables' removal, or an older target without --downgrade: one line."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from migrations.runner import alembic_config, current_revision
    from models.db import make_engine

    script = ScriptDirectory.from_config(alembic_config(database_url))
    try:
        target = script.get_revision(revision)
    except CommandError:
        known = ", ".join(sorted(rev.revision for rev in script.walk_revisions()))
        fail(f"unknown revision {revision!r} (known: {known}, head)")
    if target is None:
        fail("refusing to go below the baseline 0001: that would drop the web app's tables")
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    finally:
        engine.dispose()
    ancestors = {rev.revision for rev in script.walk_revisions("base", current)} if current else set()
    older = target.revision in ancestors and target.revision != current
    if older and not downgrade:
        fail(
            f"the database is at {current} and {target.revision} is older: migrate only upgrades; "
            f"`pedro-ingest migrate --downgrade --revision {target.revision}` goes back "
            "(and drops what later revisions added)"
        )
    if downgrade and not older:
        fail(f"--downgrade needs a revision older than the database's ({current or 'empty'}), got {target.revision}")


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision (e.g. 0004).")
@click.option("--downgrade", is_flag=True, help="Go back to an older --revision (drops what later revisions added).")
def migrate(revision: str, downgrade: bool) -> None:
    """Create or upgrade the schema; adopts objects that Prisma created (stamps the revision they match)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, OperationalError

    from migrations.existing import SchemaConflict
    from migrations.runner import migrate as run_migrations

    settings = settings_or_exit()
    try:
        if revision != "head" or downgrade:
            _check_target(settings.database_url, revision, downgrade)
        if downgrade:
            _downgrade(settings.database_url, revision)
            return
        before, after, adopted = run_migrations(settings.database_url, revision)
    except OperationalError as error:
        if getattr(error.orig, "pgcode", None) is None:  # no answer from the server, or no such database
            fail(database_error(error, settings.database_url))
        fail(f"migration failed, nothing of the failing revision was applied: {first_line(error.orig)}")
    except DBAPIError as error:
        fail(f"migration failed, nothing of the failing revision was applied: {first_line(error.orig)}")
    except SchemaConflict as error:
        fail(f"migration refused: {error}")
    except CommandError as error:  # an unknown or unreachable --revision
        fail(f"migrate: {first_line(error)}")
    if adopted:
        click.echo(f"adopted an existing database: its objects are those of revision {adopted}, stamped {adopted}")
    if before == after:
        click.echo(f"already at {after}: nothing to migrate")
        return
    click.echo(f"migrated: {before or 'empty'} -> {after}")


def _downgrade(database_url: str, revision: str) -> None:
    """Alembic's downgrade; migrations/env.py takes the migration lock, as for an upgrade."""
    from alembic import command

    from migrations.runner import alembic_config

    command.downgrade(alembic_config(database_url), revision)
    click.echo(f"downgraded to {revision}")


def first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def create_and_migrate(settings: Settings) -> None:
    from sqlalchemy.exc import OperationalError

    from migrations.runner import ensure_database

    try:
        if ensure_database(settings.database_url):
            click.echo("created the database named in DATABASE_URL")
    except OperationalError as error:
        fail(database_error(error, settings.database_url))
    click.get_current_context().invoke(migrate)


DATABASE_COMMANDS = (migrate,)
