"""The process's database engine as the settings describe it (pool size, connect timeout)."""

from __future__ import annotations

from sqlalchemy import Engine

from ingest.config.settings import Settings, get_settings
from models.db import engine_for


def engine_from(settings: Settings) -> Engine:
    return engine_for(settings.database_url, settings.db_pool_size, settings.db_connect_timeout)


def default_engine() -> Engine:
    """The engine for the environment's settings: what workers and CLI commands use unless given one."""
    return engine_from(get_settings())
