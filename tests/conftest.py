"""Test session: real PostgreSQL (a throw-away database per pytest process) and real Redis (a database
number per xdist worker, queues and keys named after this process's namespace, deleted at the end)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support import services
from tests.support.clerk import CLERK_SECRET
from tests.support.fake_asaas import API_KEY as FAKE_ASAAS_KEY
from tests.support.fake_asaas import FakeAsaas
from tests.support.processes import Process, cli_argv, serving
from tests.support.servers import NAMESPACE, REDIS_URL, clean_redis, create_database, drop_database

OWN_TABLES = [
    "WebhookEvent",
    "CreditGrant",
    "EntityVersion",
    "AsaasSubscriptionLink",
    "CreditDeduction",
    "AsaasCheckoutLink",
    "CreditLot",
    "CreditLotDraw",
    "CreditDebt",
]
PRISMA_TABLES = ["SubscriptionEvent", "StorageObject", "UsageHistory", "CreditBalance", "Plan", "AdminSettings",
                 "Feature", "User"]  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def running_services() -> Iterator[None]:
    """Set up first, so torn down last: after every worker process stopped, this session's Redis keys go."""
    problems = services.ensure_services()
    if problems:
        pytest.exit("; ".join(problems), returncode=3)
    yield
    clean_redis()


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """URL of a database migrated to head, private to this test session."""
    from migrations.runner import migrate

    name, url = create_database()
    migrate(url)
    yield url
    from models.db import _engines

    for engine in _engines.values():
        engine.dispose()
    drop_database(name)


@pytest.fixture(scope="session")
def queue_name() -> str:
    """A queue of this session's own; its Redis keys (lists, kombu bindings) are removed at the end."""
    return NAMESPACE


@pytest.fixture(scope="session")
def fake_asaas() -> Iterator[FakeAsaas]:
    """The Asaas API's installment resource, answered locally (tests register purchase totals)."""
    with FakeAsaas() as fake:
        yield fake


@pytest.fixture(scope="session")
def service_env(database: str, queue_name: str, fake_asaas: FakeAsaas) -> dict[str, str]:
    """The environment a real receiver or worker process of this session runs with."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CLERK_", "ASAAS_", "CELERY_"))}
    env.update(
        DATABASE_URL=database,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_QUEUE=queue_name,
        CLERK_WEBHOOK_SECRET=CLERK_SECRET,
        ASAAS_WEBHOOK_TOKEN="asaas-test-token",
        TASK_MAX_RETRIES="3",
        RETRY_BACKOFF_MAX="2",
        LOG_LEVEL="INFO",
        ASAAS_API_URL=fake_asaas.url,
        ASAAS_API_KEY=FAKE_ASAAS_KEY,
    )
    return env


@pytest.fixture(scope="session", autouse=True)
def process_settings(service_env: dict[str, str]) -> Iterator[None]:
    """In-process code (Flask test client, direct handler calls) sees the same settings."""
    from ingest.config.settings import get_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(service_env)
    get_settings.cache_clear()
    yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
def engine(database: str) -> Engine:
    """The session database, emptied before the test."""
    from ingest.config.database import default_engine

    engine = default_engine()
    tables = ", ".join(f'"{table}"' for table in OWN_TABLES + PRISMA_TABLES)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    return engine


@pytest.fixture
def app(engine: Engine):
    from ingest.http.app import create_app

    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def worker(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """A real `pedro-ingest worker` (Celery prefork, one child) consuming this session's queue."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = Process(
        cli_argv("worker", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
                 f"test-{secrets.token_hex(3)}@%h"),
        service_env, log,
    )  # fmt: skip
    process.wait_for_output("ready.", timeout=60)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def receiver(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real `pedro-ingest serve` (gunicorn) on free loopback ports: (webhook URL, operations URL)."""
    log: Path = tmp_path_factory.mktemp("receiver") / "receiver.log"
    with serving(service_env, log) as (process, url):
        yield url, process.ops_url  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def receiver_url(receiver: tuple[str, str]) -> str:
    return receiver[0]


@pytest.fixture(scope="session")
def receiver_ops_url(receiver: tuple[str, str]) -> str:
    """The same receiver's operations port (`/readyz`, `/metrics`)."""
    return receiver[1]
