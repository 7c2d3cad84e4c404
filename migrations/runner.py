"""`pedro-ingest migrate`: upgrade to head, adopting a database that Prisma created.

A database the web app built with `prisma migrate` holds the baseline tables and, when its schema has
pedro-ingest's model blocks, pedro-ingest's tables too, with an empty `alembic_version` or none. It is
stamped at the newest revision whose objects (and every earlier revision's) are all there, so that only
the revisions after it run; those keep any table of theirs that Prisma made already.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, make_url, text

from models.db import make_engine, sqlalchemy_url
from models.locks import migration_lock


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def present_revision(connection: Connection, config: Config) -> str | None:
    """The newest revision whose objects, and those of every revision before it, the database holds."""
    found = None
    for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions())):
        applied = getattr(script.module, "applied", None)
        if applied is None or not applied(connection):
            break
        found = script.revision
    return found


def ensure_database(database_url: str) -> bool:
    """Create the URL's database when it does not exist (local runs only); True when it was created."""
    url = make_url(sqlalchemy_url(database_url))
    maintenance = make_engine(url.set(database="postgres").render_as_string(hide_password=False), pool_size=1)
    try:
        with maintenance.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).scalar()
            if exists:
                return False
            connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
            return True
    finally:
        maintenance.dispose()


def migrate(database_url: str, revision: str = "head") -> tuple[str | None, str | None, str | None]:
    """Upgrade the database; returns (revision before, revision after, revision stamped when adopted)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection, migration_lock(connection):
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            adopted = None if current_revision(connection) else present_revision(connection, config)
            if adopted:
                command.stamp(config, adopted)
                connection.commit()
            before = current_revision(connection)
            command.upgrade(config, revision)
            connection.commit()
            return before, current_revision(connection), adopted
    finally:
        engine.dispose()
