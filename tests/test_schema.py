"""The schema on real PostgreSQL: migrations against Prisma's DDL, models against migrations, adoption, downgrade.

Every test works on its own throw-away databases and compares catalog snapshots read from pg_catalog, so a
difference shows up as a readable list of objects that are missing, extra or different.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy.exc
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import models
from migrations.existing import SchemaConflict
from migrations.runner import alembic_config, migrate
from models.db import make_engine
from models.locks import MIGRATION_LOCK_ID
from tests.support.fixtures import FIXTURES
from tests.support.servers import create_database, drop_database, run_sql

BASELINE_SQL = (FIXTURES / "prisma_baseline.sql").read_text()
PRISMA_TABLES = {"User", "Feature", "CreditBalance", "UsageHistory", "AdminSettings", "Plan", "StorageObject",
                 "SubscriptionEvent"}  # fmt: skip
OWN_TABLES = {
    "WebhookEvent",
    "CreditGrant",
    "EntityVersion",
    "AsaasSubscriptionLink",
    "CreditDeduction",
    "AsaasCheckoutLink",
    "CreditLot",
    "CreditLotDraw",
    "CreditDebt",
}
OWN_INDEXES = {"WebhookEvent_provider_eventId_key", "WebhookEvent_status_receivedAt_idx", "WebhookEvent_receivedAt_idx",
               "CreditGrant_grantKey_key",
               "CreditGrant_userId_idx", "AsaasSubscriptionLink_asaasSubscriptionId_key",
               "AsaasSubscriptionLink_userId_idx", "AsaasCheckoutLink_asaasCheckoutId_key",
               "AsaasCheckoutLink_userId_idx", "AsaasCheckoutLink_asaasSubscriptionId_idx",
               "CreditLot_creditBalanceId_idx", "CreditLot_grantKey_idx", "CreditLot_expiresAt_idx",
               "CreditDebt_creditBalanceId_idx"}  # fmt: skip
OWN_CONSTRAINTS = {
    ("WebhookEvent", "WebhookEvent_pkey"): ("p", "PRIMARY KEY (id)"),
    ("CreditGrant", "CreditGrant_pkey"): ("p", "PRIMARY KEY (id)"),
    ("CreditGrant", "CreditGrant_userId_fkey"): (
        "f", 'FOREIGN KEY ("userId") REFERENCES "User"(id) ON UPDATE CASCADE ON DELETE RESTRICT'),
    ("CreditGrant", "CreditGrant_planId_fkey"): (
        "f", 'FOREIGN KEY ("planId") REFERENCES "Plan"(id) ON UPDATE CASCADE ON DELETE SET NULL'),
    ("EntityVersion", "EntityVersion_pkey"): ("p", 'PRIMARY KEY ("entityType", "entityId")'),
    ("AsaasSubscriptionLink", "AsaasSubscriptionLink_pkey"): ("p", "PRIMARY KEY (id)"),
    ("AsaasCheckoutLink", "AsaasCheckoutLink_pkey"): ("p", "PRIMARY KEY (id)"),
    ("AsaasSubscriptionLink", "AsaasSubscriptionLink_userId_fkey"): (
        "f", 'FOREIGN KEY ("userId") REFERENCES "User"(id) ON UPDATE CASCADE ON DELETE RESTRICT'),
    ("AsaasSubscriptionLink", "AsaasSubscriptionLink_planId_fkey"): (
        "f", 'FOREIGN KEY ("planId") REFERENCES "Plan"(id) ON UPDATE CASCADE ON DELETE SET NULL'),
    ("CreditDeduction", "CreditDeduction_pkey"): ("p", 'PRIMARY KEY ("idempotencyKey")'),
    ("CreditLot", "CreditLot_pkey"): ("p", "PRIMARY KEY (id)"),
    ("CreditLotDraw", "CreditLotDraw_pkey"): ("p", 'PRIMARY KEY ("factKey", "lotId")'),
    ("CreditDebt", "CreditDebt_pkey"): ("p", "PRIMARY KEY (id)"),
}  # fmt: skip
DatabaseFactory = Callable[[], str]
NEW_OPERATION_TYPES = ("CREDIT_GRANT", "CREDIT_REVERSAL", "CREDIT_ADJUSTMENT", "CREDIT_EXPIRY")
PRISMA_MIGRATIONS_DDL = """
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);
"""


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head() or ""


# ---- catalog snapshots -----------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The public schema's objects, keyed so that two databases compare entry by entry."""

    tables: set[str] = field(default_factory=set)
    columns: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)  # (table, column) -> definition
    indexes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (table, indexdef)
    constraints: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (table, name) -> (type, def)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> values in sort order

    def restricted_to(self, tables: set[str]) -> Snapshot:
        """Only the given tables and what belongs to them (enum types are kept: they belong to no table)."""
        return Snapshot(
            tables=self.tables & tables,
            columns={key: value for key, value in self.columns.items() if key[0] in tables},
            indexes={key: value for key, value in self.indexes.items() if value[0] in tables},
            constraints={key: value for key, value in self.constraints.items() if key[0] in tables},
            enums=dict(self.enums),
        )

    def without_enums(self) -> Snapshot:
        return Snapshot(self.tables, self.columns, self.indexes, self.constraints, {})


def snapshot(url: str) -> Snapshot:
    """Read tables, columns, indexes, constraints and enum types of schema public (minus alembic_version)."""
    skip = ("alembic_version",)
    tables = run_sql(
        url,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> ALL(%s)",
        (list(skip),),
    )
    columns = run_sql(
        url,
        """
        SELECT c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
           AND c.relname <> ALL(%s)
        """,
        (list(skip),),
    )
    indexes = run_sql(
        url,
        """
        SELECT i.relname, t.relname, pg_get_indexdef(i.oid)
          FROM pg_index x
          JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_class t ON t.oid = x.indrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public' AND t.relname <> ALL(%s)
        """,
        (list(skip),),
    )
    constraints = run_sql(
        url,
        """
        SELECT t.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid)
          FROM pg_constraint k
          JOIN pg_class t ON t.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public' AND t.relname <> ALL(%s)
        """,
        (list(skip),),
    )
    enums = run_sql(
        url,
        """
        SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
          FROM pg_type t
          JOIN pg_enum e ON e.enumtypid = t.oid
          JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public'
         GROUP BY t.typname
        """,
    )
    return Snapshot(
        tables={name for (name,) in tables},
        columns={(table, name): (position, type_, not_null, default)
                 for table, name, position, type_, not_null, default in columns},
        indexes={name: (table, definition) for name, table, definition in indexes},
        constraints={(table, name): (kind, definition) for table, name, kind, definition in constraints},
        enums={name: tuple(values) for name, values in enums},
    )  # fmt: skip


def describe_diff(expected: Snapshot, actual: Snapshot) -> str:
    """One line per object: `-` only expected, `+` only actual, `~` different (expected → actual)."""
    lines: list[str] = []
    for kind in ("tables", "columns", "indexes", "constraints", "enums"):
        left, right = getattr(expected, kind), getattr(actual, kind)
        if isinstance(left, set):
            left, right = dict.fromkeys(left), dict.fromkeys(right)
        for key in sorted(left.keys() | right.keys(), key=repr):
            if key not in right:
                lines.append(f"- {kind} {key!r}: {left[key]!r}")
            elif key not in left:
                lines.append(f"+ {kind} {key!r}: {right[key]!r}")
            elif left[key] != right[key]:
                lines.append(f"~ {kind} {key!r}: {left[key]!r} → {right[key]!r}")
    return "\n".join(lines) or "(no differences)"


def assert_same(expected: Snapshot, actual: Snapshot, what: str) -> None:
    assert expected == actual, f"{what}:\n{describe_diff(expected, actual)}"


def table_rows(url: str, tables: set[str]) -> dict[str, list[tuple]]:
    """Every row of the tables, as full tuples in a stable order."""
    return {table: run_sql(url, f'SELECT * FROM "{table}" ORDER BY 1') for table in sorted(tables)}


def version_of(url: str) -> list[str]:
    return [version for (version,) in run_sql(url, "SELECT version_num FROM alembic_version")]


# ---- databases -------------------------------------------------------------------------------------------


@pytest.fixture
def new_database() -> Iterator[DatabaseFactory]:
    """A factory of empty throw-away databases, all dropped after the test."""
    names: list[str] = []

    def make() -> str:
        name, url = create_database("pedro_schema")
        names.append(name)
        return url

    yield make
    for name in names:
        drop_database(name)


@pytest.fixture(scope="module")
def prisma_url() -> Iterator[str]:
    """A database built by Prisma's DDL alone."""
    name, url = create_database("pedro_schema_prisma")
    try:
        run_sql(url, BASELINE_SQL)
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def migrated_url() -> Iterator[str]:
    """An empty database migrated to head."""
    name, url = create_database("pedro_schema_migrated")
    try:
        migrate(url)
        yield url
    finally:
        drop_database(name)


def seed_prisma_rows(url: str) -> None:
    """Rows as the web app writes them: client-side ids, explicit updatedAt, arrays, JSON and the enum."""
    run_sql(
        url,
        """
        INSERT INTO "User" (id, "clerkId", email, name, "isActive", "createdAt", "updatedAt")
        VALUES ('ckuser000000000000000001', 'user_2abcDEF', 'ada@example.org', 'Ada Lovelace', true,
                '2024-05-01 10:00:00.123', '2024-05-02 11:30:00.456');
        INSERT INTO "Plan" (id, "asaasId", "clerkId", "clerkName", name, credits, "sortOrder", currency,
                            "priceMonthlyCents", "priceYearlyCents", features, badge, highlight, "updatedAt")
        VALUES ('ckplan000000000000000001', 'asaas_plan_pro', 'cplan_pro', 'pro', 'Pro', 1000, 2, 'BRL', 4990, 49900,
                '["Fast models", "Shorts"]', 'Popular', true, '2024-05-01 10:00:00.000');
        INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
        VALUES ('ckbal0000000000000000001', 'ckuser000000000000000001', 'user_2abcDEF', 87, '2024-05-03 09:00:00.000');
        INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp)
        VALUES ('ckuse0000000000000000001', 'ckuser000000000000000001', 'ckbal0000000000000000001', 'AI_TEXT_CHAT', 13,
                '{"model": "gpt-4o-mini", "tokens": 812}', '2024-05-03 09:00:00.000');
        INSERT INTO "SubscriptionEvent" (id, "userId", "clerkUserId", "planKey", status, "eventType", metadata)
        VALUES ('cksub0000000000000000001', 'ckuser000000000000000001', 'user_2abcDEF', 'pro', 'active',
                'subscription.created', '{"source": "clerk", "items": [1, 2]}');
        INSERT INTO "Feature" (id, "workspaceId", name, description, tags, "updatedAt")
        VALUES ('ckfeat000000000000000001', 'ws_1', 'Shorts', 'Short videos', ARRAY['video', 'ai', 'beta'],
                '2024-05-01 10:00:00.000');
        INSERT INTO "AdminSettings" ("featureCosts", "updatedAt")
        VALUES ('{"AI_TEXT_CHAT": 1, "AI_IMAGE_GENERATION": 5}', '2024-05-01 10:00:00.000');
        """,
    )
    run_sql(url, PRISMA_MIGRATIONS_DDL)
    run_sql(
        url,
        """INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at,
                                             applied_steps_count)
           VALUES ('7c1c6a0e-2f6b-4f1e-9d43-0c8f2d1b5a11', repeat('a', 64), '2024-05-01 09:59:59.5+00',
                   '20240501095959_init', NULL, '2024-05-01 09:59:58.1+00', 1)""",
    )


# ---- tests -----------------------------------------------------------------------------------------------


def test_migrations_reproduce_prisma_schema_plus_documented_additions(prisma_url: str, migrated_url: str) -> None:
    prisma, migrated = snapshot(prisma_url), snapshot(migrated_url)
    assert prisma.tables == PRISMA_TABLES

    assert_same(
        prisma.without_enums(),
        migrated.restricted_to(prisma.tables).without_enums(),
        "objects of the Prisma tables differ between Prisma's DDL (-) and the migrations (+)",
    )

    extra = Snapshot(
        tables=migrated.tables - prisma.tables,
        columns={key: value for key, value in migrated.columns.items() if key not in prisma.columns},
        indexes={key: value for key, value in migrated.indexes.items() if key not in prisma.indexes},
        constraints={key: value for key, value in migrated.constraints.items() if key not in prisma.constraints},
    )
    assert extra.tables == OWN_TABLES, describe_diff(Snapshot(tables=OWN_TABLES), Snapshot(tables=extra.tables))
    assert {table for table, _ in extra.columns} == OWN_TABLES
    assert {table for table, _ in extra.indexes.values()} <= OWN_TABLES
    assert {table for table, _ in extra.constraints} <= OWN_TABLES
    primary_keys = {f"{table}_pkey" for table in OWN_TABLES}
    assert set(extra.indexes) == OWN_INDEXES | primary_keys, sorted(extra.indexes)
    assert extra.constraints == OWN_CONSTRAINTS, describe_diff(
        Snapshot(constraints=OWN_CONSTRAINTS), Snapshot(constraints=extra.constraints)
    )
    assert extra.indexes["WebhookEvent_provider_eventId_key"][1].startswith("CREATE UNIQUE INDEX")
    assert extra.indexes["CreditGrant_grantKey_key"][1].startswith("CREATE UNIQUE INDEX")
    assert extra.columns[("EntityVersion", "version")][1:3] == ("bigint", True)
    assert extra.columns[("WebhookEvent", "status")][1:] == ("text", True, "'received'::text")

    assert set(migrated.enums) == set(prisma.enums) == {"OperationType"}
    assert migrated.enums["OperationType"] == prisma.enums["OperationType"] + NEW_OPERATION_TYPES


def test_models_match_migrated_database(migrated_url: str) -> None:
    engine = make_engine(migrated_url, pool_size=1)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, models.Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], "models (metadata) differ from the migrated database:\n" + "\n".join(map(repr, diff))


def test_migrate_adopts_a_populated_prisma_database(new_database: DatabaseFactory) -> None:
    url = new_database()
    run_sql(url, BASELINE_SQL)
    seed_prisma_rows(url)
    existing = PRISMA_TABLES | {"_prisma_migrations"}
    schema_before, rows_before = snapshot(url), table_rows(url, existing)
    assert all(rows_before[table] for table in PRISMA_TABLES - {"StorageObject"}), rows_before

    before, after, adopted = migrate(url)

    assert (before, after, adopted) == ("0001", head_revision(), "0001")
    assert version_of(url) == [head_revision()]
    assert table_rows(url, existing) == rows_before
    schema_after = snapshot(url)
    assert_same(
        schema_before.without_enums(),
        schema_after.restricted_to(existing).without_enums(),
        "adoption changed existing tables",
    )
    assert schema_after.tables == existing | OWN_TABLES
    assert schema_after.enums["OperationType"] == schema_before.enums["OperationType"] + NEW_OPERATION_TYPES

    assert migrate(url) == (head_revision(), head_revision(), None)
    assert table_rows(url, existing) == rows_before
    assert_same(schema_after, snapshot(url), "a second migrate changed the schema")


def test_downgrade_to_base_and_upgrade_again(new_database: DatabaseFactory) -> None:
    url = new_database()
    migrate(url)
    at_head = snapshot(url)

    command.downgrade(alembic_config(url), "base")
    assert_same(Snapshot(), snapshot(url), "objects left after downgrade to base")
    assert version_of(url) == []

    command.upgrade(alembic_config(url), "head")
    assert version_of(url) == [head_revision()]
    assert_same(at_head, snapshot(url), "upgrade after downgrade differs from the first upgrade")


def ledger_database(new_database: DatabaseFactory) -> str:
    """A populated Prisma database migrated to head, whose ledger holds a CREDIT_GRANT row."""
    url = new_database()
    run_sql(url, BASELINE_SQL)
    seed_prisma_rows(url)
    migrate(url)
    run_sql(
        url,
        """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed")
           VALUES ('ckuse0000000000000000002', 'ckuser000000000000000001', 'ckbal0000000000000000001',
                   'CREDIT_GRANT', -100)""",
    )
    return url


def test_downgrade_of_0003_refuses_while_ledger_uses_new_operation_types(new_database: DatabaseFactory) -> None:
    url = ledger_database(new_database)
    command.downgrade(alembic_config(url), "0003")  # later revisions step down first
    at_head, rows = snapshot(url), table_rows(url, PRISMA_TABLES)

    with pytest.raises(sqlalchemy.exc.DBAPIError):
        command.downgrade(alembic_config(url), "0002")

    assert version_of(url) == ["0003"]
    assert_same(at_head, snapshot(url), "a refused downgrade changed the schema")
    assert table_rows(url, PRISMA_TABLES) == rows


def test_downgrade_of_0003_rebuilds_the_prisma_enum_keeping_rows(new_database: DatabaseFactory) -> None:
    url = new_database()
    run_sql(url, BASELINE_SQL)
    seed_prisma_rows(url)
    prisma_schema, rows = snapshot(url), table_rows(url, PRISMA_TABLES)
    migrate(url)
    assert version_of(url) == [head_revision()]

    command.downgrade(alembic_config(url), "0002")

    assert version_of(url) == ["0002"]
    assert_same(
        prisma_schema.restricted_to(PRISMA_TABLES),
        snapshot(url).restricted_to(PRISMA_TABLES),
        "Prisma tables after downgrade to 0002",
    )
    assert table_rows(url, PRISMA_TABLES) == rows


# A failing migration must surface its own error and release the migration lock.


@pytest.mark.parametrize("path", ["alembic command", "runner.migrate"])
def test_failed_migration_raises_its_own_error(new_database: DatabaseFactory, path: str) -> None:
    if path == "alembic command":
        url = ledger_database(new_database)
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="cannot downgrade"):
            command.downgrade(alembic_config(url), "0002")
    else:
        url = new_database()
        run_sql(url, BASELINE_SQL)
        run_sql(url, 'CREATE TABLE "WebhookEvent" (id TEXT PRIMARY KEY)')
        with pytest.raises(SchemaConflict, match='"WebhookEvent" already exists without the column'):
            migrate(url)
        assert version_of(url) == ["0001"]  # the conflicting revision left nothing behind


def test_failed_migration_releases_the_advisory_lock(new_database: DatabaseFactory) -> None:
    url = ledger_database(new_database)
    with pytest.raises(sqlalchemy.exc.DBAPIError) as failure:
        command.downgrade(alembic_config(url), "0002")

    # Only this database's locks: other test sessions migrate their own databases under the same lock id.
    held = run_sql(
        url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (MIGRATION_LOCK_ID,),
    )
    assert held == [], f"advisory lock still held by {held} after {failure.type.__name__}"


def payload_compression(url: str) -> str:
    """`l` (lz4), `p` (pglz) or empty (the server default) for WebhookEvent.payload."""
    [(method,)] = run_sql(
        url,
        """SELECT attcompression FROM pg_attribute
           WHERE attrelid = '"WebhookEvent"'::regclass AND attname = 'payload'""",
    )
    return method


def server_has_lz4(url: str) -> bool:
    [(available,)] = run_sql(
        url, "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    return available


def test_inbox_payload_is_lz4_compressed_and_downgrade_restores_the_default(new_database: DatabaseFactory) -> None:
    url = new_database()
    migrate(url)
    if not server_has_lz4(url):
        pytest.skip("this PostgreSQL has no lz4 (the migration leaves pglz)")
    assert payload_compression(url) == "l"

    command.downgrade(alembic_config(url), "0004")
    assert payload_compression(url) == ""


WEBAPP_MIGRATIONS = FIXTURES.parent.parent / "webapp" / "migrations"


@pytest.mark.parametrize(
    ("prisma_made", "expected"),
    [
        ((), "0001"),
        (("pedro_ingest_0005",), "0004"),
        (("pedro_ingest_0005", "pedro_ingest_0006"), "0004"),
        (("pedro_ingest_0005", "pedro_ingest_0006", "pedro_ingest_0007", "pedro_ingest_0011"), "0004"),
    ],
)
def test_migrate_stamps_the_newest_revision_whose_objects_prisma_made(
    new_database: DatabaseFactory, prisma_made: tuple[str, ...], expected: str
) -> None:
    """The web app's Prisma migrations ran first (an empty alembic_version among them): adopt, stamp, go on."""
    url = new_database()
    run_sql(url, BASELINE_SQL)
    seed_prisma_rows(url)
    for folder in prisma_made:
        run_sql(url, (WEBAPP_MIGRATIONS / folder / "migration.sql").read_text())
    if not prisma_made:
        run_sql(url, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    rows_before = table_rows(url, PRISMA_TABLES)
    if expected == "0004" and not server_has_lz4(url):
        expected = "0005"  # nothing for 0005 to do on this server

    assert migrate(url) == (expected, head_revision(), expected)

    assert table_rows(url, PRISMA_TABLES) == rows_before
    fresh = new_database()
    migrate(fresh)
    expected = snapshot(fresh)
    assert_same(expected, snapshot(url).restricted_to(expected.tables), "adopted differs from migrated from empty")
