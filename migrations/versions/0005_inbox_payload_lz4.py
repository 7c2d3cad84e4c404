"""Inbox payloads compressed with lz4 instead of pglz, where the server supports it.

A 2–4 KB webhook body is compressed on insert; pglz made that about a fifth of PostgreSQL's CPU per
stored event (`bench/receiver.py`: 95 → 75 µs per row in batches of 32). lz4 compresses several times
faster and decompresses faster for the worker that reads the row back. Only new rows are affected,
existing ones stay readable as they are: the change is catalog-only (a brief lock, no table rewrite).
Servers without lz4 (older than PostgreSQL 14, or built without it) keep pglz.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_LZ4_AVAILABLE = sa.text(
    """SELECT EXISTS (SELECT 1 FROM pg_settings
                      WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))"""
)

_PAYLOAD_COMPRESSION = sa.text(
    """SELECT attcompression FROM pg_attribute WHERE attrelid = '"WebhookEvent"'::regclass AND attname = 'payload'"""
)


def applied(connection: Connection) -> bool:
    """Prisma never sets column compression: only a server without lz4 has nothing to do here."""
    return not connection.execute(_LZ4_AVAILABLE).scalar() or connection.execute(_PAYLOAD_COMPRESSION).scalar() == "l"


def upgrade() -> None:
    if op.get_bind().execute(_LZ4_AVAILABLE).scalar():
        op.execute('ALTER TABLE "WebhookEvent" ALTER COLUMN payload SET COMPRESSION lz4')


def downgrade() -> None:
    if op.get_bind().execute(_LZ4_AVAILABLE).scalar():
        op.execute('ALTER TABLE "WebhookEvent" ALTER COLUMN payload SET COMPRESSION DEFAULT')
