"""What the console's views work with, built once per app: the engine, the publisher, settings, auth."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ingest.broker.publisher import Publisher
from ingest.config.settings import Settings
from ingest.http.console.auth import ConsoleAuth


@dataclass(frozen=True)
class Console:
    engine: Engine
    publisher: Publisher
    settings: Settings
    auth: ConsoleAuth
