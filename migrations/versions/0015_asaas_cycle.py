"""Asaas subscription cycles: the period of a paid charge is its due date plus its subscription's cycle.

- `AsaasSubscriptionLink.cycle`: the cycle (`WEEKLY` … `YEARLY`) of the latest `SUBSCRIPTION_CREATED` /
  `SUBSCRIPTION_UPDATED`.
- `CreditLot.provisionalCycleOf`: the Asaas subscription whose cycle was not known when this plan lot's period
  was computed (counted MONTHLY); the subscription event that tells the cycle corrects the lot and clears it.
  Indexed, so that event finds its lots without a scan.

Nullable columns without defaults: no table rewrite; the index is built CONCURRENTLY (every row is NULL).

Revision ID: 0015
Revises: 0014
"""

from alembic import op
from sqlalchemy import Connection

from migrations.existing import table_columns

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEX = "CreditLot_provisionalCycleOf_idx"


def applied(connection: Connection) -> bool:
    return "cycle" in table_columns(connection, "AsaasSubscriptionLink") and "provisionalCycleOf" in table_columns(
        connection, "CreditLot"
    )


def upgrade() -> None:
    op.execute('ALTER TABLE "AsaasSubscriptionLink" ADD COLUMN IF NOT EXISTS "cycle" TEXT')
    op.execute('ALTER TABLE "CreditLot" ADD COLUMN IF NOT EXISTS "provisionalCycleOf" TEXT')
    with op.get_context().autocommit_block():
        op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON "CreditLot" ("provisionalCycleOf")')


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')
    op.execute('ALTER TABLE "CreditLot" DROP COLUMN IF EXISTS "provisionalCycleOf"')
    op.execute('ALTER TABLE "AsaasSubscriptionLink" DROP COLUMN IF EXISTS "cycle"')
