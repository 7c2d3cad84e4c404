"""Alembic environment: short lock timeouts and an advisory lock so two deploys never migrate at once."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from models import Base
from models.db import make_engine
from models.locks import migration_lock

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
        with engine.connect() as connection, migration_lock(connection):
            run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
