"""Prisma baseline: the web app's tables exactly as Prisma Migrate creates them.

Runs `prisma_baseline.sql` verbatim, so the schema is byte-for-byte Prisma's. A database that Prisma
already created is stamped at this revision instead (see `migrations.runner` and `applied`).

Revision ID: 0001
Revises:
"""

from pathlib import Path

from alembic import op
from sqlalchemy import Connection

from migrations.existing import has_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE_SQL = Path(__file__).resolve().parent.parent / "prisma_baseline.sql"
PRISMA_TABLES = (
    "SubscriptionEvent",
    "StorageObject",
    "UsageHistory",
    "CreditBalance",
    "Plan",
    "AdminSettings",
    "Feature",
    "User",
)


def applied(connection: Connection) -> bool:
    """The web app's tables exist (its Prisma migrations ran): adopt them instead of running the baseline."""
    return has_tables(connection, *PRISMA_TABLES)


def upgrade() -> None:
    op.get_bind().exec_driver_sql(BASELINE_SQL.read_text())


def downgrade() -> None:
    for table in PRISMA_TABLES:
        op.execute(f'DROP TABLE "{table}"')
    op.execute('DROP TYPE "OperationType"')
