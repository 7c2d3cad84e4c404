"""The real Prisma CLI (6.19.3, from `tests/prisma/`), and the web app's schema built as README tells.

`npm ci` installs the pinned packages the first time (the npm registry, or its cache when offline).
Prisma runs its JS schema engine over `tests/prisma/wrapped-adapter.js`, so it downloads nothing.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.fixtures import FIXTURES

KIT = Path(__file__).resolve().parents[1] / "prisma"
REPO = KIT.parents[1]
WEBAPP = REPO / "webapp"
SEED = FIXTURES / "schema.seed.prisma"
CLI = KIT / "node_modules" / ".bin" / "prisma"
INDEX_AS_SEEDED = "@@index([sortOrder: length(4)])"
INDEX_FOR_POSTGRES = "@@index([sortOrder])"
NEW_OPERATION_TYPES = ("CREDIT_GRANT", "CREDIT_REVERSAL", "CREDIT_ADJUSTMENT", "CREDIT_EXPIRY")
BACK_RELATIONS = "  creditGrants           CreditGrant[]\n  asaasSubscriptionLinks AsaasSubscriptionLink[]\n"


def install() -> None:
    """`npm ci` unless the installed tree is the one package-lock.json describes. Under a file lock: parallel
    test processes would otherwise run `npm ci` in the same folder at once, each deleting the other's tree."""
    with open(KIT / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = KIT / "node_modules" / ".package-lock.json"
        lock_file = KIT / "package-lock.json"
        if CLI.exists() and installed.exists() and installed.stat().st_mtime >= lock_file.stat().st_mtime:
            return
        npm = shutil.which("npm")
        assert npm, "the Prisma tests need Node.js 20+ and npm on PATH"
        argv = [npm, "ci", "--no-audit", "--no-fund"]
        done = subprocess.run(argv, cwd=KIT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"


def environment(database_url: str, schema_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRISMA_", "DIRECT_URL"))}
    env.update(
        PRISMA_SCHEMA=str(schema_path),
        DATABASE_URL=database_url,
        DIRECT_URL=database_url,
        PRISMA_CLIENT_ENGINE_TYPE="client",
        CHECKPOINT_DISABLE="1",
        PRISMA_HIDE_UPDATE_MESSAGE="1",
        NODE_OPTIONS=f"--require {KIT / 'exit-when-done.js'}",
    )
    return env


def prisma(
    database_url: str, schema_path: Path, *args: str | Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the Prisma CLI on the web app whose schema is `schema_path` (its migrations are beside it).

    The schema goes through the config, never only `--schema`: a CLI that cannot read the config's
    schema falls back to the native query engine and tries to download it. With `check`, a non-zero
    exit fails with Prisma's own output.
    """
    argv = [str(CLI), *map(str, args), "--config", str(KIT / "prisma.config.ts")]
    env = environment(database_url, schema_path)
    done = subprocess.run(argv, cwd=KIT, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"prisma {' '.join(map(str, args))} exited {done.returncode}:\n{output(done)}"
    return done


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"{done.stdout}\n{done.stderr}"


def webapp_schema(*, as_of_0005: bool = False) -> str:
    """The seed schema with README's edits: the PostgreSQL index, enum values, back-relations, model blocks
    (`as_of_0005`: the blocks as they were at revision 0005, before 0006's table, 0007's index, 0009's table,
    the lots of 0011, the enum value of 0014 and the cycle of 0015)."""
    schema = SEED.read_text().replace(INDEX_AS_SEEDED, INDEX_FOR_POSTGRES)
    values = "".join(f"  {value}\n" for value in NEW_OPERATION_TYPES[: 3 if as_of_0005 else None])
    schema = schema.replace("  SHORTS_MEDIA\n}", f"  SHORTS_MEDIA\n{values}}}")
    for model in ("User", "Plan"):
        schema = re.sub(rf"(model {model} \{{\n(?:.*\n)*?)(\n  @@index)", rf"\1{BACK_RELATIONS}\2", schema, count=1)
    blocks = (WEBAPP / "pedro-ingest.prisma").read_text()
    if as_of_0005:
        for later in ("CreditDeduction", "AsaasCheckoutLink", "CreditLot", "CreditLotDraw", "CreditDebt"):
            blocks = re.sub(rf"///[^\n]*\nmodel {later} \{{.*?\n\}}\n", "", blocks, flags=re.S)
        blocks = blocks.replace("  @@index([receivedAt])\n", "")
        blocks = blocks.replace("  cycle               String?\n", "")
    return f"{schema}\n{blocks}"


def webapp_project(root: Path, schema: str) -> Path:
    """A web app's prisma/ folder with `schema` and an empty migration history; returns the schema path."""
    folder = root / "prisma"
    (folder / "migrations").mkdir(parents=True, exist_ok=True)
    (folder / "migrations" / "migration_lock.toml").write_text('provider = "postgresql"\n')
    path = folder / "schema.prisma"
    path.write_text(schema)
    return path


def add_migration(schema_path: Path, name: str, sql: str) -> None:
    folder = schema_path.parent / "migrations" / name
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text(sql)


def shipped_migration(revision: str) -> str:
    """The idempotent Prisma migration pedro-ingest ships for the web app's history (webapp/migrations/)."""
    return (WEBAPP / "migrations" / f"pedro_ingest_{revision}" / "migration.sql").read_text()


def drift(database_url: str, schema_path: Path) -> str:
    """What Prisma would change to bring the live database to the schema; empty when nothing.

    With a driver adapter Prisma refuses `--from-url`, so the live DDL is dumped into a one-migration
    history that Prisma replays in a shadow database and compares with the datamodel.
    """
    dumped = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "--schema=public",
         "--exclude-table=public._prisma_migrations", database_url],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    keep = [
        line
        for line in dumped.stdout.splitlines()
        if not line.startswith(("\\", "--", "CREATE SCHEMA public;", "COMMENT ON SCHEMA public "))
        and "set_config('search_path'" not in line
    ]
    with tempfile.TemporaryDirectory(prefix="pedro-prisma-drift-") as work:
        history = Path(work) / "migrations"
        (history / "0_live").mkdir(parents=True)
        (history / "migration_lock.toml").write_text('provider = "postgresql"\n')
        (history / "0_live" / "migration.sql").write_text("\n".join(keep))
        done = prisma(
            database_url, schema_path, "migrate", "diff", "--from-migrations", history,
            "--to-schema-datamodel", schema_path, "--script", "--exit-code", check=False,
        )  # fmt: skip
    assert done.returncode in (0, 2), f"prisma migrate diff failed:\n{output(done)}"
    return "" if done.returncode == 0 else done.stdout


def shipped_revisions(after: str) -> list[str]:
    """The revisions with a shipped web-app migration newer than `after`, in order."""
    names = sorted(path.name for path in (WEBAPP / "migrations").iterdir() if path.name.startswith("pedro_ingest_"))
    return [name.removeprefix("pedro_ingest_") for name in names if name.removeprefix("pedro_ingest_") > after]
