"""The web app's functions answer every bad input with a reason, and a refund names its user.

- A NULL user is `unknown_user`, a NULL or non-positive amount `invalid_amount` (no NOT NULL violation).
- `details` is bounded to 16,384 bytes (`invalid_details`): the web app writes it, pedro-ingest stores it,
  and an unbounded body would make one call store megabytes on the ledger.
- `pedro_refund_credits(idempotency_key, clerk_user_id DEFAULT NULL)` replaces the one-argument form: a
  user that does not match the deduction's is `unknown_deduction`, so a key alone cannot refund someone
  else's deduction. Calls with one argument keep working.

Functions only: Prisma sees nothing here.

Revision ID: 0010
Revises: 0009
"""

import importlib

from alembic import op
from sqlalchemy import Connection, text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NEW_ID = "'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)"  # cuid-shaped: 25 characters
DETAILS_LIMIT = 16384

DEDUCT = f"""
CREATE OR REPLACE FUNCTION pedro_deduct_credits(
    clerk_user_id text, amount integer, operation_type "OperationType", idempotency_key text, details jsonb
) RETURNS TABLE (ok boolean, credits_remaining integer, reason text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    now_utc timestamp(3) := now() AT TIME ZONE 'UTC';
    ledger_details jsonb;
    claimed text;
    prior "CreditDeduction"%ROWTYPE;
    state record;
BEGIN
    IF idempotency_key IS NULL OR idempotency_key = '' THEN
        RAISE EXCEPTION 'pedro_deduct_credits: idempotency_key is required' USING ERRCODE = '22023';
    END IF;
    IF operation_type IS NULL OR operation_type::text LIKE 'CREDIT\\_%' THEN
        RAISE EXCEPTION 'pedro_deduct_credits: operation_type % is not a usage type', operation_type
            USING ERRCODE = '22023';
    END IF;
    ok := false;
    IF amount IS NULL OR amount <= 0 THEN
        reason := 'invalid_amount';
        RETURN NEXT;
        RETURN;
    END IF;
    IF octet_length(details::text) > {DETAILS_LIMIT} THEN
        reason := 'invalid_details';
        RETURN NEXT;
        RETURN;
    END IF;
    IF clerk_user_id IS NULL THEN
        reason := 'unknown_user';
        RETURN NEXT;
        RETURN;
    END IF;
    ledger_details := CASE
        WHEN details IS NULL THEN jsonb_build_object('idempotencyKey', idempotency_key)
        WHEN jsonb_typeof(details) = 'object' THEN details || jsonb_build_object('idempotencyKey', idempotency_key)
        ELSE jsonb_build_object('details', details, 'idempotencyKey', idempotency_key) END;

    -- The claim: a second call with this key waits here until the first one commits or rolls back.
    INSERT INTO "CreditDeduction" ("idempotencyKey", "clerkUserId", "operationType", credits, "createdAt")
    VALUES (idempotency_key, clerk_user_id, operation_type, amount, now_utc)
    ON CONFLICT ("idempotencyKey") DO NOTHING
    RETURNING "idempotencyKey" INTO claimed;
    IF claimed IS NULL THEN
        SELECT * INTO prior FROM "CreditDeduction" k WHERE k."idempotencyKey" = idempotency_key;
        IF prior."clerkUserId" <> clerk_user_id OR prior.credits <> amount OR prior."operationType" <> operation_type
        THEN
            RAISE EXCEPTION 'pedro_deduct_credits: idempotency key % was used for another deduction', idempotency_key
                USING ERRCODE = '22023';
        END IF;
        ok := true;
        credits_remaining := prior."balanceAfter";
        RETURN NEXT;
        RETURN;
    END IF;

    WITH debited AS (
        UPDATE "CreditBalance" b
           SET "creditsRemaining" = b."creditsRemaining" - amount, "updatedAt" = now_utc
          FROM "User" u
         WHERE b."clerkUserId" = clerk_user_id AND u.id = b."userId" AND u."isActive"
           AND b."creditsRemaining" >= amount
        RETURNING b.id, b."userId", b."creditsRemaining"
    ), ledger AS (
        INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp)
        SELECT {NEW_ID}, d."userId", d.id, operation_type, amount, ledger_details, now_utc FROM debited d
        RETURNING id, "creditBalanceId"
    )
    UPDATE "CreditDeduction" k
       SET "userId" = d."userId", "creditBalanceId" = d.id, "balanceAfter" = d."creditsRemaining",
           "usageHistoryId" = l.id
      FROM debited d JOIN ledger l ON l."creditBalanceId" = d.id
     WHERE k."idempotencyKey" = idempotency_key
    RETURNING k."balanceAfter" INTO credits_remaining;
    IF FOUND THEN
        ok := true;
        RETURN NEXT;
        RETURN;
    END IF;

    DELETE FROM "CreditDeduction" k WHERE k."idempotencyKey" = idempotency_key;
    SELECT b."creditsRemaining" AS balance, u."isActive" AS active INTO state
      FROM "CreditBalance" b JOIN "User" u ON u.id = b."userId"
     WHERE b."clerkUserId" = clerk_user_id;
    IF NOT FOUND THEN
        reason := 'unknown_user';
    ELSE
        credits_remaining := state.balance;
        reason := CASE WHEN state.active THEN 'insufficient_credits' ELSE 'inactive_user' END;
    END IF;
    RETURN NEXT;
END
$fn$
"""

REFUND = f"""
CREATE OR REPLACE FUNCTION pedro_refund_credits(idempotency_key text, clerk_user_id text DEFAULT NULL)
RETURNS TABLE (ok boolean, credits_remaining integer, reason text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    now_utc timestamp(3) := now() AT TIME ZONE 'UTC';
    deduction "CreditDeduction"%ROWTYPE;
BEGIN
    ok := false;
    SELECT * INTO deduction FROM "CreditDeduction" k
     WHERE k."idempotencyKey" = idempotency_key AND (clerk_user_id IS NULL OR k."clerkUserId" = clerk_user_id)
       FOR UPDATE;
    IF NOT FOUND THEN
        reason := 'unknown_deduction';
        RETURN NEXT;
        RETURN;
    END IF;
    ok := true;
    IF deduction."refundedAt" IS NOT NULL THEN
        credits_remaining := deduction."refundBalanceAfter";
        RETURN NEXT;
        RETURN;
    END IF;

    WITH credited AS (
        UPDATE "CreditBalance" b
           SET "creditsRemaining" = b."creditsRemaining" + deduction.credits, "updatedAt" = now_utc
         WHERE b.id = deduction."creditBalanceId"
        RETURNING b.id, b."userId", b."creditsRemaining"
    ), ledger AS (
        INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details, timestamp)
        SELECT {NEW_ID}, c."userId", c.id, deduction."operationType", -deduction.credits,
               jsonb_build_object('kind', 'refund', 'idempotencyKey', idempotency_key,
                                  'refundOf', deduction."usageHistoryId"),
               now_utc
          FROM credited c
        RETURNING id
    )
    UPDATE "CreditDeduction" k
       SET "refundedAt" = now_utc, "refundBalanceAfter" = c."creditsRemaining", "refundUsageHistoryId" = l.id
      FROM credited c, ledger l
     WHERE k."idempotencyKey" = idempotency_key
    RETURNING k."refundBalanceAfter" INTO credits_remaining;
    RETURN NEXT;
END
$fn$
"""
_TWO_ARGUMENT_REFUND = text(
    "SELECT to_regprocedure('pedro_refund_credits(text, text)') IS NOT NULL"
    " AND to_regprocedure('pedro_refund_credits(text)') IS NULL"
)


def applied(connection: Connection) -> bool:
    return bool(connection.execute(_TWO_ARGUMENT_REFUND).scalar())


def upgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pedro_refund_credits(text)")
    op.execute(DEDUCT)
    op.execute(REFUND)


def downgrade() -> None:
    previous = importlib.import_module("migrations.versions.0006_credit_deduction")
    op.execute("DROP FUNCTION IF EXISTS pedro_refund_credits(text, text)")
    op.execute(previous.DEDUCT)
    op.execute(previous.REFUND)
