"""`AsaasCheckoutLink`: Asaas Checkout id → the reference, user and plan of the purchase, and charges waiting.

An Asaas Checkout's charge arrives with `externalReference: null` and `checkoutSession` naming the checkout;
the web app's reference is on the checkout (`CHECKOUT_CREATED` / `CHECKOUT_PAID`). This table keeps that link,
and the inbox rows of charges processed before it (applied when the checkout's event arrives).

A new table only, so it runs on a populated database without locking the web app's tables. A table the web
app's Prisma migrations already made from the model block (webapp/pedro-ingest.prisma) is kept. No foreign
keys: a charge can create the row before any user is known, and the web app's `User` and `Plan` models need
no back-relation for it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from migrations.existing import create_indexes_unless_present, create_table_unless_present, has_tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = TIMESTAMP(precision=3)


def applied(connection: Connection) -> bool:
    return has_tables(connection, "AsaasCheckoutLink")


def upgrade() -> None:
    create_table_unless_present(
        "AsaasCheckoutLink",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("asaasCheckoutId", sa.Text(), nullable=False),
        sa.Column("userId", sa.Text(), nullable=True),
        sa.Column("planId", sa.Text(), nullable=True),
        sa.Column("externalReference", sa.Text(), nullable=True),
        sa.Column("chargeType", sa.Text(), nullable=True),
        sa.Column("asaasSubscriptionId", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("pendingEventIds", JSONB(), nullable=True),
        sa.Column("sourceEventId", sa.Text(), nullable=True),
        sa.Column("createdAt", TS, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("updatedAt", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="AsaasCheckoutLink_pkey"),
    )
    create_indexes_unless_present(
        "AsaasCheckoutLink",
        {
            "AsaasCheckoutLink_asaasCheckoutId_key": (["asaasCheckoutId"], True),
            "AsaasCheckoutLink_userId_idx": (["userId"], False),
            "AsaasCheckoutLink_asaasSubscriptionId_idx": (["asaasSubscriptionId"], False),
        },
    )


def downgrade() -> None:
    op.drop_table("AsaasCheckoutLink")
