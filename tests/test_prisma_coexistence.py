"""The web app's side, with the real Prisma CLI: both migration orders, a later revision, the deduction call.

Each test follows README's "Your web app" steps on a database of its own: Prisma commands through
`tests/support/prisma.py`, `pedro-ingest migrate` as the real CLI process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from migrations.runner import alembic_config
from models.db import make_engine
from tests.support import prisma as kit
from tests.support.clerk import clerk_user_event, post_clerk
from tests.support.processes import Process, cli_argv, serving, wait_for
from tests.support.servers import create_database, drop_database, run_sql
from workers.jobs import reconcile

pytestmark = pytest.mark.slow  # the Prisma CLI, minutes

PRISMA_ROWS = """
INSERT INTO "User" (id, "clerkId", email, "updatedAt")
VALUES ('ckuserprisma0000000000001', 'user_webapp', 'w@example.org', now());
INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
VALUES ('ckbalprisma00000000000001', 'ckuserprisma0000000000001', 'user_webapp', 87, now());
INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details)
VALUES ('ckuseprisma00000000000001', 'ckuserprisma0000000000001', 'ckbalprisma00000000000001', 'AI_TEXT_CHAT', 13,
        '{"model": "gpt-4o-mini"}');
INSERT INTO "Plan" (id, name, credits, "sortOrder", "updatedAt")
VALUES ('ckplanprisma0000000000001', 'Pro', 500, 1, now());
"""  # fmt: skip
PRISMA_TABLES = ("User", "CreditBalance", "UsageHistory", "Plan")
# The newest revision, whether or not it ships a web-app migration (functions-only revisions do not).
HEAD = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head() or ""


@pytest.fixture(scope="module", autouse=True)
def prisma_installed() -> None:
    kit.install()


@pytest.fixture
def webapp_db() -> Iterator[str]:
    name, url = create_database("pedro_prisma")
    yield url
    drop_database(name)


def pedro_migrate(url: str) -> str:
    """`pedro-ingest migrate` as the real process: exit 0 and never a traceback."""
    done = subprocess.run(cli_argv("migrate"), env=migrate_env(url), capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def migrate_env(url: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "DATABASE_URL": url}


def status(url: str, schema: Path) -> str:
    done = kit.prisma(url, schema, "migrate", "status", check=False)
    assert done.returncode == 0, kit.output(done)
    assert "Database schema is up to date!" in done.stdout
    return done.stdout


def assert_no_drift(url: str, schema: Path) -> None:
    """Migration history, schema and live database all agree, in Prisma's own terms."""
    status(url, schema)
    history = kit.prisma(
        url, schema, "migrate", "diff", "--from-migrations", schema.parent / "migrations", "--to-schema-datamodel",
        schema, "--script", "--exit-code", check=False,
    )  # fmt: skip
    assert history.returncode == 0, f"migrations differ from the schema:\n{kit.output(history)}"
    assert kit.drift(url, schema) == ""


def rows_of(url: str) -> dict[str, list[tuple]]:
    return {table: run_sql(url, f'SELECT * FROM "{table}" ORDER BY id') for table in PRISMA_TABLES}


def deploy_seed_history(url: str, schema: Path) -> None:
    """The web app as it was before pedro-ingest: one migration from the seed schema, deployed, with rows."""
    seed_only = kit.SEED.read_text().replace(kit.INDEX_AS_SEEDED, kit.INDEX_FOR_POSTGRES)
    seed_path = schema.parent / "seed.prisma"
    seed_path.write_text(seed_only)
    init = kit.prisma(url, seed_path, "migrate", "diff", "--from-empty", "--to-schema-datamodel", seed_path, "--script")
    kit.add_migration(schema, "20240101000000_init", init.stdout)
    seed_path.unlink()


def add_shipped_migrations(schema: Path, *, after: str, stamp: str = "20250101") -> None:
    """Every migration pedro-ingest ships after revision `after`, as the web app copies them, in order."""
    for number, revision in enumerate(kit.shipped_revisions(after)):
        kit.add_migration(schema, f"{stamp}{number:06d}_pedro_ingest_{revision}", kit.shipped_migration(revision))


def server_has_lz4(url: str) -> bool:
    query = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    return run_sql(url, query)[0][0]


def test_the_seed_schema_is_rejected_until_its_sortorder_index_is_fixed(tmp_path: Path, webapp_db: str) -> None:
    fixed = kit.webapp_project(tmp_path, kit.webapp_schema())
    seed = tmp_path / "seed.prisma"
    seed.write_text(kit.SEED.read_text())
    rejected = kit.prisma(webapp_db, fixed, "validate", "--schema", seed, check=False)
    assert rejected.returncode != 0
    assert "P1012" in rejected.stderr and "@@index([sortOrder: length(4)])" in rejected.stderr
    kit.prisma(webapp_db, fixed, "validate", "--schema", fixed)


def test_pedro_ingest_first_then_the_web_app_baselines(tmp_path: Path, webapp_db: str) -> None:
    assert f"migrated: empty -> {HEAD}" in pedro_migrate(webapp_db)
    schema = kit.webapp_project(tmp_path, kit.webapp_schema())

    init = kit.prisma(webapp_db, schema, "migrate", "diff", "--from-empty", "--to-schema-datamodel", schema, "--script")
    kit.add_migration(schema, "0_init", init.stdout)
    kit.prisma(webapp_db, schema, "migrate", "resolve", "--applied", "0_init")

    assert_no_drift(webapp_db, schema)


def test_existing_prisma_history_adopted_by_pedro_ingest_then_deploys_the_shipped_migrations(
    tmp_path: Path, webapp_db: str
) -> None:
    """The web app had its own history; pedro-ingest migrated first; its migrations then deploy as no-ops."""
    schema = kit.webapp_project(tmp_path, kit.webapp_schema())
    deploy_seed_history(webapp_db, schema)
    kit.prisma(webapp_db, schema, "migrate", "deploy")
    run_sql(webapp_db, PRISMA_ROWS)
    before = rows_of(webapp_db)

    assert "adopted an existing database: its objects are those of revision 0001" in pedro_migrate(webapp_db)
    add_shipped_migrations(schema, after="0004")
    deployed = kit.prisma(webapp_db, schema, "migrate", "deploy")

    assert "All migrations have been successfully applied." in deployed.stdout
    assert rows_of(webapp_db) == before
    assert_no_drift(webapp_db, schema)


@pytest.mark.parametrize("history", ["seed plus shipped migrations", "one init from the whole schema"])
def test_prisma_first_then_pedro_ingest_migrate_and_a_webhook_end_to_end(
    tmp_path: Path, webapp_db: str, history: str, service_env: dict[str, str]
) -> None:
    schema = kit.webapp_project(tmp_path, kit.webapp_schema())
    if history == "one init from the whole schema":  # also what `prisma migrate reset` and `db push` leave
        init = kit.prisma(webapp_db, schema, "migrate", "diff", "--from-empty", "--to-schema-datamodel", schema,
                          "--script")  # fmt: skip
        kit.add_migration(schema, "20240101000000_init", init.stdout)
    else:
        deploy_seed_history(webapp_db, schema)
        add_shipped_migrations(schema, after="0004")
    kit.prisma(webapp_db, schema, "migrate", "deploy")
    assert run_sql(webapp_db, "SELECT count(*) FROM alembic_version") == [(0,)]  # Prisma made it, empty
    run_sql(webapp_db, PRISMA_ROWS)
    before = rows_of(webapp_db)

    output = pedro_migrate(webapp_db)

    found = "0004" if server_has_lz4(webapp_db) else "0005"  # Prisma never sets 0005's lz4 compression
    assert f"adopted an existing database: its objects are those of revision {found}" in output
    assert f"migrated: {found} -> {HEAD}" in output
    assert rows_of(webapp_db) == before
    assert_no_drift(webapp_db, schema)
    assert pedro_migrate(webapp_db).strip() == f"already at {HEAD}: nothing to migrate"
    webhook_end_to_end(webapp_db, service_env, tmp_path)


def webhook_end_to_end(url: str, service_env: dict[str, str], tmp_path: Path) -> None:
    """A Clerk user.created through a real receiver and worker on this webapp_db, then a deduction."""
    env = {**service_env, "DATABASE_URL": url, "CELERY_QUEUE": f"{service_env['CELERY_QUEUE']}-prisma"}
    worker = Process(
        cli_argv("worker", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
                 f"prisma-{secrets.token_hex(3)}@%h"),
        env, tmp_path / "worker.log",
    )  # fmt: skip
    try:
        worker.wait_for_output("ready.", timeout=60)
        with serving(env, tmp_path / "receiver.log") as (_, receiver):
            event = clerk_user_event("user.created", email="ada@example.org")
            assert post_clerk(receiver, event).status_code == 200
            wait_for(lambda: run_sql(url, """SELECT status FROM "WebhookEvent" """) == [("processed",)], what="event")
    finally:
        worker.stop()
    clerk_id = event["data"]["id"]
    assert run_sql(url, """SELECT "creditsRemaining" FROM "CreditBalance" WHERE "clerkUserId" = %s""", (clerk_id,))
    [(ok, left, reason)] = run_sql(
        url, """SELECT * FROM pedro_deduct_credits(%s, 7, 'AI_TEXT_CHAT', 'e2e-1', NULL)""", (clerk_id,)
    )
    assert ok and reason is None and left >= 0
    engine = make_engine(url, pool_size=3)  # reconcile holds three: its job lock, the snapshot reader, a writer
    try:
        report = reconcile.reconcile(fix=False, engine=engine)
    finally:
        engine.dispose()
    assert report.drifted == 0


@pytest.mark.parametrize("first", ["pedro-ingest migrate", "prisma migrate deploy"])
def test_a_later_revision_needs_one_step_from_the_web_app_in_either_order(
    tmp_path: Path, webapp_db: str, first: str
) -> None:
    """The web app is at pedro-ingest 0005; later revisions arrive. Its step: update the blocks, copy the migrations."""
    schema = kit.webapp_project(tmp_path, kit.webapp_schema(as_of_0005=True))
    deploy_seed_history(webapp_db, schema)
    kit.add_migration(schema, "20250101000000_pedro_ingest_0005", kit.shipped_migration("0005"))
    kit.prisma(webapp_db, schema, "migrate", "deploy")
    run_sql(webapp_db, PRISMA_ROWS)
    run_pedro_migrate_to(webapp_db, "0005")
    assert_no_drift(webapp_db, schema)
    before = rows_of(webapp_db)

    def web_app_step() -> None:
        schema.write_text(kit.webapp_schema())
        add_shipped_migrations(schema, after="0005", stamp="20250201")
        kit.prisma(webapp_db, schema, "migrate", "deploy")

    if first == "pedro-ingest migrate":
        assert f"migrated: 0005 -> {HEAD}" in pedro_migrate(webapp_db)
        assert 'DROP TABLE "CreditDeduction"' in kit.drift(webapp_db, schema), "Prisma sees the new table"
        web_app_step()
    else:
        web_app_step()
        assert f"migrated: 0005 -> {HEAD}" in pedro_migrate(webapp_db)

    assert rows_of(webapp_db) == before
    assert_no_drift(webapp_db, schema)


def run_pedro_migrate_to(url: str, revision: str) -> None:
    done = subprocess.run(
        cli_argv("migrate", "--revision", revision), env=migrate_env(url), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_web_app_deducts_through_the_generated_prisma_client(webapp_db: str) -> None:
    pedro_migrate(webapp_db)
    with tempfile.TemporaryDirectory(prefix=".webapp-", dir=kit.KIT) as root:  # generate resolves @prisma/client here
        schema = kit.webapp_project(Path(root), kit.webapp_schema())
        kit.prisma(webapp_db, schema, "generate")
    clerk_id = "user_client"
    run_sql(
        webapp_db,
        """INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES ('ckuserclient000000000001', %s, now());
           INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
           VALUES ('ckbalclient0000000000001', 'ckuserclient000000000001', %s, 100, now());
           INSERT INTO "AdminSettings" (id, "featureCosts", "updatedAt")
           VALUES ('singleton', '{"AI_IMAGE_GENERATION": 10, "AI_TEXT_CHAT": 1}', now());
           INSERT INTO "Plan" (id, name, credits, features, "updatedAt")
           VALUES ('plan_pro', 'Pro', 500, '{"AI_IMAGE_GENERATION": 5}', now());
           INSERT INTO "CreditLot" (id, "userId", "creditBalanceId", category, amount, remaining, priority,
                                    "effectiveAt", "planId")
           VALUES ('cklotclient0000000000001', 'ckuserclient000000000001', 'ckbalclient0000000000001', 'plan', 0, 0,
                   10, now(), 'plan_pro')""",
        (clerk_id, clerk_id),
    )  # a spent plan period: the user is on plan_pro
    done = subprocess.run(
        ["node", str(kit.KIT / "deduct-through-client.js"), clerk_id],
        cwd=kit.KIT, env=kit.environment(webapp_db, schema), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, kit.output(done)
    results = json.loads(done.stdout.strip().splitlines()[-1])

    assert results["first"] == {"ok": True, "creditsRemaining": 70, "reason": None}
    assert results["again"] == results["first"]
    assert results["tooMuch"] == {"ok": False, "creditsRemaining": 70, "reason": "insufficient_credits"}
    assert results["unknown"] == {"ok": False, "creditsRemaining": None, "reason": "unknown_user"}
    assert sum(r["ok"] for r in results["parallel"]) == 3  # 70 credits, 20 each
    assert results["refund"] == results["refundAgain"] == {"ok": True, "creditsRemaining": 40, "reason": None}
    assert results["charge"] == {"ok": True, "creditsRemaining": 30, "cost": 10, "reason": None}, "the plan's 5 each"
    assert results["chargeAgain"] == results["charge"]
    assert results["unpriced"] == {"ok": False, "creditsRemaining": 30, "cost": None, "reason": "unpriced_operation"}
    assert results["plan"] == {"planId": "plan_pro", "periodEnd": None, "status": "active"}
    assert results["lots"] == [{"category": "opening", "remaining": 30, "expiresAt": None, "planId": None}]
    assert results["balance"] == 30
    ledger = """SELECT "operationType"::text, "creditsUsed" FROM "UsageHistory" ORDER BY timestamp, 2 DESC"""
    [(details,)] = run_sql(webapp_db, """SELECT details FROM "UsageHistory" WHERE "creditsUsed" = 30""")
    assert details == {"model": "flux-schnell", "prompt": "a lighthouse", "idempotencyKey": "req-1"}
    assert run_sql(webapp_db, ledger) == [("AI_IMAGE_GENERATION", 30)] + [("AI_TEXT_CHAT", 20)] * 3 + [
        ("AI_IMAGE_GENERATION", -30),
        ("AI_IMAGE_GENERATION", 10),
    ]


def test_migrate_refuses_a_conflicting_table_in_one_line(webapp_db: str) -> None:
    run_sql(webapp_db, (kit.FIXTURES / "prisma_baseline.sql").read_text())
    run_sql(webapp_db, 'CREATE TABLE "WebhookEvent" (id TEXT PRIMARY KEY)')
    done = subprocess.run(cli_argv("migrate"), env=migrate_env(webapp_db), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        'pedro-ingest: migration refused: table "WebhookEvent" already exists without the column(s) attempts, eventId, '
        "eventType, lastError, lastErrorDetail, occurredAt, payload, processedAt, provider, receivedAt, status, "
        "updatedAt: it was not made from pedro-ingest's model block; rename or drop it, then run migrate again"
    ]
