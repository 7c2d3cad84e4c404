"""`AsaasSubscriptionLink`: Asaas subscription id → user and plan, for linking later payments.

A new table only, so it runs on a populated database without locking the web app's tables. A table the
web app's Prisma migrations already made from README's model block is kept.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import TIMESTAMP

from migrations.existing import create_indexes_unless_present, create_table_unless_present, has_tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = TIMESTAMP(precision=3)


def applied(connection: Connection) -> bool:
    return has_tables(connection, "AsaasSubscriptionLink")


def upgrade() -> None:
    create_table_unless_present(
        "AsaasSubscriptionLink",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("asaasSubscriptionId", sa.Text(), nullable=False),
        sa.Column("userId", sa.Text(), nullable=False),
        sa.Column("planId", sa.Text(), nullable=True),
        sa.Column("asaasCustomerId", sa.Text(), nullable=True),
        sa.Column("externalReference", sa.Text(), nullable=True),
        sa.Column("sourceEventId", sa.Text(), nullable=True),
        sa.Column("createdAt", TS, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("updatedAt", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="AsaasSubscriptionLink_pkey"),
        sa.ForeignKeyConstraint(
            ["userId"], ["User.id"], name="AsaasSubscriptionLink_userId_fkey", ondelete="RESTRICT", onupdate="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["planId"], ["Plan.id"], name="AsaasSubscriptionLink_planId_fkey", ondelete="SET NULL", onupdate="CASCADE"
        ),
    )
    create_indexes_unless_present(
        "AsaasSubscriptionLink",
        {
            "AsaasSubscriptionLink_asaasSubscriptionId_key": (["asaasSubscriptionId"], True),
            "AsaasSubscriptionLink_userId_idx": (["userId"], False),
        },
    )


def downgrade() -> None:
    op.drop_table("AsaasSubscriptionLink")
