"""The drain benchmark's ceiling: the same effects in the same transaction shape, by plain psycopg2.

One transaction per delivery: lock the inbox row, skip it if final, apply the effects with hand-written
SQL (no ORM, no Celery), mark it processed. It does slightly *less* than pedro-ingest's handlers (no
payload validation, no subscription-link bookkeeping), so it is an upper bound.
"""

from __future__ import annotations

import datetime as dt
import json

import cuid
import psycopg2


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def apply_user(cursor, row_id: str, payload: dict) -> None:
    data, stamp = payload["data"], now()
    deleted = payload["type"] == "user.deleted"
    version = payload.get("timestamp") if deleted else data["updated_at"]
    cursor.execute(
        """INSERT INTO "EntityVersion" ("entityType", "entityId", version, deleted, "sourceEventId", "updatedAt")
           VALUES ('clerk_user', %s, %s, %s, %s, %s)
           ON CONFLICT ("entityType", "entityId") DO UPDATE SET version = EXCLUDED.version,
             deleted = EXCLUDED.deleted, "sourceEventId" = EXCLUDED."sourceEventId", "updatedAt" = EXCLUDED."updatedAt"
           WHERE "EntityVersion".version < EXCLUDED.version RETURNING 1""",
        (data["id"], version, deleted, row_id, stamp),
    )
    if cursor.fetchone() is None:
        return
    if deleted:
        cursor.execute(
            """UPDATE "User" SET "isActive" = false, email = NULL, name = NULL, "updatedAt" = %s
               WHERE "clerkId" = %s""",
            (stamp, data["id"]),
        )
        return
    email = data["email_addresses"][0]["email_address"]
    cursor.execute(
        """UPDATE "User" SET email = NULL, "updatedAt" = %s WHERE email = %s AND "clerkId" <> %s""",
        (stamp, email, data["id"]),
    )
    cursor.execute(
        """INSERT INTO "User" (id, "clerkId", email, name, "isActive", "createdAt", "updatedAt")
           VALUES (%s, %s, %s, %s, true, %s, %s)
           ON CONFLICT ("clerkId") DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
             "updatedAt" = EXCLUDED."updatedAt" RETURNING id""",
        (cuid.cuid(), data["id"], email, f"{data['first_name']} {data['last_name']}", stamp, stamp),
    )
    user_id = cursor.fetchone()[0]
    cursor.execute(
        """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "lastSyncedAt",
             "createdAt", "updatedAt") VALUES (%s, %s, %s, 100, %s, %s, %s)
           ON CONFLICT ("userId") DO NOTHING RETURNING id""",
        (cuid.cuid(), user_id, data["id"], stamp, stamp, stamp),
    )
    balance = cursor.fetchone()
    if balance is None:
        return
    cursor.execute(
        """INSERT INTO "CreditGrant" (id, "grantKey", "userId", amount, "sourceEventId", "createdAt")
           VALUES (%s, %s, %s, 100, %s, %s)""",
        (cuid.cuid(), f"clerk:signup:{data['id']}", user_id, row_id, stamp),
    )
    cursor.execute(
        """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details,
             timestamp) VALUES (%s, %s, %s, 'CREDIT_GRANT', -100, %s, %s)""",
        (cuid.cuid(), user_id, balance[0], json.dumps({"kind": "signup"}), stamp),
    )


def apply_payment(cursor, row_id: str, payload: dict) -> None:
    payment, stamp = payload["payment"], now()
    clerk_id, plan_ref = payment["externalReference"].split("|plan:")
    cursor.execute('SELECT id FROM "User" WHERE "clerkId" = %s', (clerk_id,))
    user_id = cursor.fetchone()[0]
    cursor.execute('SELECT id, credits FROM "Plan" WHERE id = %s', (plan_ref,))
    plan_id, credits = cursor.fetchone()
    cursor.execute(
        """INSERT INTO "CreditGrant" (id, "grantKey", "userId", "planId", amount, "sourceEventId", "createdAt")
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT ("grantKey") DO NOTHING RETURNING id""",
        (cuid.cuid(), f"asaas:payment:{payment['id']}", user_id, plan_id, credits, row_id, stamp),
    )
    if cursor.fetchone() is not None:
        cursor.execute(
            """UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + %s, "updatedAt" = %s
               WHERE "userId" = %s RETURNING id""",
            (credits, stamp, user_id),
        )
        balance_id = cursor.fetchone()[0]
        cursor.execute(
            """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed",
                 details, timestamp) VALUES (%s, %s, %s, 'CREDIT_GRANT', %s, %s, %s)""",
            (cuid.cuid(), user_id, balance_id, -credits, json.dumps({"payment": payment["id"]}), stamp),
        )
    cursor.execute(
        """INSERT INTO "SubscriptionEvent" (id, "userId", "clerkUserId", "planKey", status, "eventType",
             "occurredAt", metadata, "createdAt") VALUES (%s, %s, %s, %s, 'active', %s, %s, %s, %s)""",
        (cuid.cuid(), user_id, clerk_id, plan_id, payload["event"], stamp, json.dumps({"paymentId": payment["id"]}),
         stamp),
    )  # fmt: skip


def drain(database_url: str, row_ids: list[str]) -> None:
    """Apply every delivery in `row_ids` (duplicates included) one transaction each."""
    connection = psycopg2.connect(database_url)
    try:
        for row_id in row_ids:
            with connection, connection.cursor() as cursor:
                cursor.execute(
                    'SELECT status, provider, payload FROM "WebhookEvent" WHERE id = %s FOR UPDATE', (row_id,)
                )
                status, provider, payload = cursor.fetchone()
                if status in ("processed", "ignored"):
                    continue
                (apply_user if provider == "clerk" else apply_payment)(cursor, row_id, payload)
                cursor.execute(
                    """UPDATE "WebhookEvent" SET status = 'processed', attempts = attempts + 1, "processedAt" = %s,
                         "updatedAt" = %s WHERE id = %s""",
                    (now(), now(), row_id),
                )
    finally:
        connection.close()
