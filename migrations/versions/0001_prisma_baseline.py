"""Prisma baseline: the web app's tables exactly as Prisma Migrate creates them.

Runs `prisma_baseline.sql` verbatim, so the schema is byte-for-byte Prisma's. A database that Prisma
already created is stamped at this revision instead (see `migrations.runner`).

Revision ID: 0001
Revises:
"""

from pathlib import Path

from alembic import op

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


def upgrade() -> None:
    op.get_bind().exec_driver_sql(BASELINE_SQL.read_text())


def downgrade() -> None:
    for table in PRISMA_TABLES:
        op.execute(f'DROP TABLE "{table}"')
    op.execute('DROP TYPE "OperationType"')
