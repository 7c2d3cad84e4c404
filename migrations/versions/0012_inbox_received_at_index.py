"""Index on `WebhookEvent."receivedAt"`: the operator console pages the whole inbox newest first.

Without it, a page of the unfiltered list sorts every row (seconds at 10 million rows); with it, a page
is an index range scan whatever its depth (keyset cursor). Built CONCURRENTLY, so the receiver keeps
inserting while it builds; the Prisma model block in README carries the same `@@index([receivedAt])`.

Revision ID: 0012
Revises: 0005
"""

from alembic import op

revision = "0012"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEX = "WebhookEvent_receivedAt_idx"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON "WebhookEvent" ("receivedAt")')


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')
