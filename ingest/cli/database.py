"""Schema commands: `migrate` (Alembic, adopting what the web app's Prisma migrations created)."""

from __future__ import annotations

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from ingest.cli.support import fail, settings_or_exit
from ingest.config.settings import Settings


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(revision: str) -> None:
    """Create or upgrade the schema; adopts objects that Prisma created (stamps the revision they match)."""
    from alembic.util import CommandError

    from migrations.existing import SchemaConflict
    from migrations.runner import migrate as run_migrations

    settings = settings_or_exit()
    try:
        before, after, adopted = run_migrations(settings.database_url, revision)
    except OperationalError as error:
        if getattr(error.orig, "pgcode", None) is None:  # no answer from the server at all
            fail(f"database unreachable: {first_line(error.orig)}")
        fail(f"migration failed, nothing of the failing revision was applied: {first_line(error.orig)}")
    except DBAPIError as error:
        fail(f"migration failed, nothing of the failing revision was applied: {first_line(error.orig)}")
    except SchemaConflict as error:
        fail(f"migration refused: {error}")
    except CommandError as error:  # an unknown or unreachable --revision
        fail(f"migrate: {first_line(error)}")
    if adopted:
        click.echo(f"adopted an existing database: its objects are those of revision {adopted}, stamped {adopted}")
    click.echo(f"migrated: {before or 'empty'} -> {after}")


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def create_and_migrate(settings: Settings) -> None:
    from migrations.runner import ensure_database

    try:
        if ensure_database(settings.database_url):
            click.echo("created the database named in DATABASE_URL")
    except OperationalError as error:
        fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
    click.get_current_context().invoke(migrate)


DATABASE_COMMANDS = (migrate,)
