"""Alembic environment: short lock timeouts and an advisory lock so two deploys never migrate at once."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from models import Base
from models.db import make_engine

MIGRATION_LOCK_ID = 0x70656472  # "pedr": one advisory lock for every pedro-ingest migration
config = context.config
target_metadata = Base.metadata


def run_with(connection) -> None:
    # Session-level timeouts, committed so that Alembic sees no outer transaction and really runs one
    # transaction per revision.
    connection.execute(text("SET lock_timeout = '5s'"))
    connection.execute(text("SET statement_timeout = '10min'"))
    connection.commit()
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url", ""), pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
            try:
                run_with(connection)
            finally:
                connection.rollback()  # a failed revision leaves the transaction aborted: unlock needs a clean one
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
