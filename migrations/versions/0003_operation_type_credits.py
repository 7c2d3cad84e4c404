"""`OperationType` gains CREDIT_GRANT, CREDIT_REVERSAL and CREDIT_ADJUSTMENT for the ledger.

`ALTER TYPE … ADD VALUE` takes no table lock. The downgrade rebuilds the type and refuses, with a
clear error, while ledger rows still use the new values.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from sqlalchemy import Connection

from migrations.existing import enum_labels

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_VALUES = ("CREDIT_GRANT", "CREDIT_REVERSAL", "CREDIT_ADJUSTMENT")
OLD_VALUES = ("AI_TEXT_CHAT", "AI_IMAGE_GENERATION", "AI_VIDEO_GENERATION", "SHORTS_SCRIPT", "SHORTS_MEDIA")


def applied(connection: Connection) -> bool:
    return enum_labels(connection, "OperationType") >= set(NEW_VALUES)


def upgrade() -> None:
    for value in NEW_VALUES:
        op.execute(f"ALTER TYPE \"OperationType\" ADD VALUE IF NOT EXISTS '{value}'")


def downgrade() -> None:
    in_use = ", ".join(f"'{v}'" for v in NEW_VALUES)
    op.execute(
        f"""DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM "UsageHistory" WHERE "operationType"::text IN ({in_use})) THEN
            RAISE EXCEPTION 'UsageHistory rows use pedro-ingest operation types; cannot downgrade';
          END IF; END $$"""
    )
    old = ", ".join(f"'{v}'" for v in OLD_VALUES)
    op.execute('ALTER TYPE "OperationType" RENAME TO "OperationType_old"')
    op.execute(f'CREATE TYPE "OperationType" AS ENUM ({old})')
    op.execute(
        'ALTER TABLE "UsageHistory" ALTER COLUMN "operationType" TYPE "OperationType" '
        'USING "operationType"::text::"OperationType"'
    )
    op.execute('DROP TYPE "OperationType_old"')
