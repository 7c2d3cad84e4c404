"""Hostile inputs: the backfill's inbox rows under a provider of their own, and no version in the future.

- `PAYMENT_SYNC` rows (the Asaas backfill's, ids `payment-sync:…`) move from provider `asaas` to
  `asaas-sync`, where the webhook cannot reach them: a wire event with that type or id prefix is now
  stored `ignored` (`reserved_event`) under `asaas`.
- A Clerk `updated_at` of the year 9999 was accepted as a user's version and froze every later update.
  Versions more than a day in the future are cleared: an entity that is not deleted goes back to 0 (the
  next update applies), a deletion keeps its mark at the migration's time (still terminal).

Data only: no table, column or index changes, nothing for the web app's Prisma schema. A database in
which nothing is left to change counts as having it (`applied`), so adoption can stamp past it.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


_LEFT_TO_DO = sa.text(
    f"""SELECT EXISTS (SELECT 1 FROM "WebhookEvent" WHERE provider = 'asaas' AND "eventType" = 'PAYMENT_SYNC'
                                                      AND "eventId" LIKE 'payment-sync:%')
            OR EXISTS (SELECT 1 FROM "EntityVersion" WHERE version > {_NOW_MS} + 86400000)"""
)


def applied(connection: Connection) -> bool:
    return not connection.execute(_LEFT_TO_DO).scalar()


def upgrade() -> None:
    op.execute(
        """UPDATE "WebhookEvent" SET provider = 'asaas-sync'
            WHERE provider = 'asaas' AND "eventType" = 'PAYMENT_SYNC' AND "eventId" LIKE 'payment-sync:%'"""
    )
    op.execute(
        f"""UPDATE "EntityVersion" SET version = CASE WHEN deleted THEN {_NOW_MS} ELSE 0 END
             WHERE version > {_NOW_MS} + 86400000"""
    )


def downgrade() -> None:
    op.execute(
        """UPDATE "WebhookEvent" s SET provider = 'asaas'
            WHERE s.provider = 'asaas-sync' AND NOT EXISTS (
                  SELECT 1 FROM "WebhookEvent" w WHERE w.provider = 'asaas' AND w."eventId" = s."eventId")"""
    )
