"""`pedro-ingest migrate`: upgrade to head, adopting a database that Prisma created.

A database the web app built with `prisma migrate` already holds the baseline tables but no
`alembic_version`: it is stamped at the baseline (0001) so that only pedro-ingest's revisions run.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, make_url, text

from models.db import make_engine, sqlalchemy_url

BASELINE_REVISION = "0001"
MIGRATION_LOCK_ID = 0x70656472


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def is_unversioned_prisma_database(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return "User" in tables and "CreditBalance" in tables and "alembic_version" not in tables


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


def migrate(database_url: str, revision: str = "head") -> tuple[str | None, str | None, bool]:
    """Upgrade the database; returns (revision before, revision after, whether it was adopted)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
            try:
                config = alembic_config(database_url)
                config.attributes["connection"] = connection
                adopted = is_unversioned_prisma_database(connection)
                if adopted:
                    command.stamp(config, BASELINE_REVISION)
                    connection.commit()
                before = current_revision(connection)
                command.upgrade(config, revision)
                connection.commit()
                return before, current_revision(connection), adopted
            finally:
                connection.rollback()  # after a failed revision the transaction is aborted; unlock needs a clean one
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()
    finally:
        engine.dispose()
