"""Schema commands: `migrate` (Alembic, adopting a database Prisma created)."""

from __future__ import annotations

import click
from sqlalchemy.exc import OperationalError

from ingest.cli.support import fail, settings_or_exit
from ingest.config.settings import Settings


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(revision: str) -> None:
    """Create or upgrade the schema; adopts a database that Prisma created (stamps the baseline)."""
    from migrations.runner import migrate as run_migrations

    settings = settings_or_exit()
    try:
        before, after, adopted = run_migrations(settings.database_url, revision)
    except OperationalError as error:
        fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
        return
    if adopted:
        click.echo("adopted an existing Prisma database: stamped the baseline revision 0001")
    click.echo(f"migrated: {before or 'empty'} -> {after}")


def create_and_migrate(settings: Settings) -> None:
    from migrations.runner import ensure_database

    try:
        if ensure_database(settings.database_url):
            click.echo("created the database named in DATABASE_URL")
    except OperationalError as error:
        fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
    click.get_current_context().invoke(migrate)


DATABASE_COMMANDS = (migrate,)
