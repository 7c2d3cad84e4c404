"""The process's database engine as the settings describe it (pool size, connect timeout)."""

from __future__ import annotations

from sqlalchemy import Engine

from ingest.config.settings import Settings, get_settings
from models.db import engine_for


def engine_from(settings: Settings) -> Engine:
    return engine_for(settings.database_url, settings.db_pool_size, settings.db_connect_timeout)


def connect_problem(error: BaseException, database_url: str) -> str:
    """One line for a failed connection: a missing database is named as such (it is not "unreachable"),
    with how to create it; anything else is unreachable, with the server's first line."""
    from sqlalchemy import make_url

    cause = getattr(error, "orig", None) or error
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    url = make_url(database_url)
    if "does not exist" in first and url.database and f'"{url.database}"' in first:
        return (
            f'database "{url.database}" does not exist on {url.host or "localhost"}:{url.port or 5432}: '
            f'create it (CREATE DATABASE "{url.database}") and run migrate again (`pedro-ingest dev` creates it)'
        )
    return f"database unreachable: {first}"


def default_engine() -> Engine:
    """The engine for the environment's settings: what workers and CLI commands use unless given one."""
    return engine_from(get_settings())
