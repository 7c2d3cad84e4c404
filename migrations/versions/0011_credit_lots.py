"""Credit lots: a balance is the sum of lots, each with its own remaining amount, priority and expiry.

`CreditLot`: one row per grant (category `signup`, `plan`, `rollover`, `purchase`, `trial`, `adjustment`,
`opening`). `CreditLotDraw`: which lots each fact (a deduction, a reversal) took credits from, so that
undoing the fact returns them to the same lots. `CreditDebt`: what a reversal could not take because the
balance was already 0; the next credits that enter the balance repay it first. The SQL functions below are
the only code that changes lots; every balance writer (the web app's functions, grants, reversals,
reconciliation) calls them with the balance row locked first (lock order: `CreditBalance` → `CreditLot` →
`CreditGrant` / `UsageHistory`).

Existing balances get one `opening` lot each (never expires), so Σ lots == balance from the first minute.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import TIMESTAMP

from migrations.existing import create_table_unless_present, has_functions, has_tables
from migrations.lots_0011 import FUNCTIONS, LOT_FUNCTIONS_SQL

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = TIMESTAMP(precision=3)
NEW_ID = "'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)"
OPENING_LOTS = f"""
INSERT INTO "CreditLot" (id, "userId", "creditBalanceId", "grantKey", category, amount, remaining, priority,
                         "effectiveAt", "createdAt")
SELECT {NEW_ID}, b."userId", b.id, NULL, 'opening', b."creditsRemaining", b."creditsRemaining",
       pedro_lot_priority('opening'), b."createdAt", now() AT TIME ZONE 'UTC'
  FROM "CreditBalance" b
 WHERE b."creditsRemaining" > 0
   AND NOT EXISTS (SELECT 1 FROM "CreditLot" l WHERE l."creditBalanceId" = b.id)
"""


def applied(connection: Connection) -> bool:
    return has_tables(connection, "CreditLot", "CreditLotDraw", "CreditDebt") and has_functions(connection, *FUNCTIONS)


def upgrade() -> None:
    create_table_unless_present(
        "CreditLot",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("userId", sa.Text(), nullable=False),
        sa.Column("creditBalanceId", sa.Text(), nullable=False),
        sa.Column("grantKey", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("effectiveAt", TS, nullable=False),
        sa.Column("expiresAt", TS, nullable=True),
        sa.Column("periodEnd", TS, nullable=True),
        sa.Column("planId", sa.Text(), nullable=True),
        sa.Column("expiredAt", TS, nullable=True),
        sa.Column("voidedAt", TS, nullable=True),
        sa.Column("createdAt", TS, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.PrimaryKeyConstraint("id", name="CreditLot_pkey"),
    )
    op.execute('CREATE INDEX IF NOT EXISTS "CreditLot_creditBalanceId_idx" ON "CreditLot" ("creditBalanceId")')
    op.execute('CREATE INDEX IF NOT EXISTS "CreditLot_grantKey_idx" ON "CreditLot" ("grantKey")')
    op.execute('CREATE INDEX IF NOT EXISTS "CreditLot_expiresAt_idx" ON "CreditLot" ("expiresAt")')
    create_table_unless_present(
        "CreditLotDraw",
        sa.Column("factKey", sa.Text(), nullable=False),
        sa.Column("lotId", sa.Text(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("createdAt", TS, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.PrimaryKeyConstraint("factKey", "lotId", name="CreditLotDraw_pkey"),
    )
    create_table_unless_present(
        "CreditDebt",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("userId", sa.Text(), nullable=False),
        sa.Column("creditBalanceId", sa.Text(), nullable=False),
        sa.Column("factKey", sa.Text(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("createdAt", TS, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("settledAt", TS, nullable=True),
        sa.Column("cancelledAt", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="CreditDebt_pkey"),
    )
    op.execute('CREATE INDEX IF NOT EXISTS "CreditDebt_creditBalanceId_idx" ON "CreditDebt" ("creditBalanceId")')
    op.execute(LOT_FUNCTIONS_SQL)
    op.execute(OPENING_LOTS)


def downgrade() -> None:
    for signature in FUNCTIONS.values():
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_table("CreditDebt")
    op.drop_table("CreditLotDraw")
    op.drop_table("CreditLot")
