"""pedro-ingest's tables: the WebhookEvent inbox, CreditGrant keys, EntityVersion state.

New tables only, so it runs on a populated database without locking the web app's tables. Tables and
indexes that the web app's Prisma migrations already made from README's model blocks are kept.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from migrations.existing import create_indexes_unless_present, create_table_unless_present, has_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = TIMESTAMP(precision=3)
NOW = sa.text("CURRENT_TIMESTAMP")
TABLES = ("WebhookEvent", "CreditGrant", "EntityVersion")


def applied(connection: Connection) -> bool:
    return has_tables(connection, *TABLES)


def upgrade() -> None:
    create_table_unless_present(
        "WebhookEvent",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("eventId", sa.Text(), nullable=False),
        sa.Column("eventType", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), nullable=True),
        sa.Column("receivedAt", TS, nullable=False, server_default=NOW),
        sa.Column("occurredAt", TS, nullable=True),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'received'")),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("lastError", sa.Text(), nullable=True),
        sa.Column("lastErrorDetail", sa.Text(), nullable=True),
        sa.Column("processedAt", TS, nullable=True),
        sa.Column("updatedAt", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="WebhookEvent_pkey"),
    )
    create_indexes_unless_present(
        "WebhookEvent",
        {
            "WebhookEvent_provider_eventId_key": (["provider", "eventId"], True),
            "WebhookEvent_status_receivedAt_idx": (["status", "receivedAt"], False),
        },
    )

    create_table_unless_present(
        "CreditGrant",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("grantKey", sa.Text(), nullable=False),
        sa.Column("userId", sa.Text(), nullable=False),
        sa.Column("planId", sa.Text(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("sourceEventId", sa.Text(), nullable=True),
        sa.Column("createdAt", TS, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="CreditGrant_pkey"),
        sa.ForeignKeyConstraint(
            ["userId"], ["User.id"], name="CreditGrant_userId_fkey", ondelete="RESTRICT", onupdate="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["planId"], ["Plan.id"], name="CreditGrant_planId_fkey", ondelete="SET NULL", onupdate="CASCADE"
        ),
    )
    create_indexes_unless_present(
        "CreditGrant", {"CreditGrant_grantKey_key": (["grantKey"], True), "CreditGrant_userId_idx": (["userId"], False)}
    )

    create_table_unless_present(
        "EntityVersion",
        sa.Column("entityType", sa.Text(), nullable=False),
        sa.Column("entityId", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("sourceEventId", sa.Text(), nullable=True),
        sa.Column("updatedAt", TS, nullable=False),
        sa.PrimaryKeyConstraint("entityType", "entityId", name="EntityVersion_pkey"),
    )


def downgrade() -> None:
    op.drop_table("EntityVersion")
    op.drop_table("CreditGrant")
    op.drop_table("WebhookEvent")
