"""Index on `WebhookEvent."receivedAt"`: the operator console pages the whole inbox newest first.

Without it, a page of the unfiltered list sorts every row (0.65–0.83 s at a million rows in
`bench/console_events.py`); with it, a page is an index range scan whatever its depth (keyset cursor),
about 1–2 ms. Built CONCURRENTLY, so the receiver keeps inserting while it builds. The web app's Prisma
schema carries the same `@@index([receivedAt])` (webapp/pedro-ingest.prisma, webapp/migrations/).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "WebhookEvent_receivedAt_idx"
_INDEX_EXISTS = sa.text("SELECT to_regclass(:name) IS NOT NULL")


def applied(connection: Connection) -> bool:
    return bool(connection.execute(_INDEX_EXISTS, {"name": f'"{INDEX}"'}).scalar())


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON "WebhookEvent" ("receivedAt")')


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')
