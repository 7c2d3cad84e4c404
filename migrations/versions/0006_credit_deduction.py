"""Credit deduction for the web app: `pedro_deduct_credits` and `pedro_refund_credits`, keys in `CreditDeduction`.

The web app's deductions are half of the ledger, so they go through one database function: a claim on the
idempotency key, then one statement that decrements only when enough credits remain, writes the
`UsageHistory` row and records the result under the key. A concurrent call with the same key waits on the
claim and then returns the first call's result. A refused deduction (`insufficient_credits`, `unknown_user`,
`inactive_user`, `invalid_amount`) changes nothing and leaves its key free, so the same call may be
retried. The keys live in pedro-ingest's own table: the web app's tables do not change.

A new table and two functions: nothing here locks the web app's tables.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import ENUM, TIMESTAMP

from migrations.existing import create_table_unless_present, has_functions, has_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = TIMESTAMP(precision=3)
FUNCTIONS = ("pedro_deduct_credits", "pedro_refund_credits")
NEW_ID = "'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)"  # cuid-shaped: 25 characters

DEDUCT = f"""
CREATE OR REPLACE FUNCTION pedro_deduct_credits(
    clerk_user_id text, amount integer, operation_type "OperationType", idempotency_key text, details jsonb
) RETURNS TABLE (ok boolean, credits_remaining integer, reason text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    now_utc timestamp(3) := now() AT TIME ZONE 'UTC';
    ledger_details jsonb := CASE
        WHEN details IS NULL THEN jsonb_build_object('idempotencyKey', idempotency_key)
        WHEN jsonb_typeof(details) = 'object' THEN details || jsonb_build_object('idempotencyKey', idempotency_key)
        ELSE jsonb_build_object('details', details, 'idempotencyKey', idempotency_key) END;
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
CREATE OR REPLACE FUNCTION pedro_refund_credits(idempotency_key text)
RETURNS TABLE (ok boolean, credits_remaining integer, reason text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    now_utc timestamp(3) := now() AT TIME ZONE 'UTC';
    deduction "CreditDeduction"%ROWTYPE;
BEGIN
    ok := false;
    SELECT * INTO deduction FROM "CreditDeduction" k WHERE k."idempotencyKey" = idempotency_key FOR UPDATE;
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


def applied(connection: Connection) -> bool:
    return has_tables(connection, "CreditDeduction") and has_functions(connection, *FUNCTIONS)


def upgrade() -> None:
    create_table_unless_present(
        "CreditDeduction",
        sa.Column("idempotencyKey", sa.Text(), nullable=False),
        sa.Column("clerkUserId", sa.Text(), nullable=False),
        sa.Column("userId", sa.Text(), nullable=True),
        sa.Column("creditBalanceId", sa.Text(), nullable=True),
        sa.Column("operationType", ENUM(name="OperationType", create_type=False), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("balanceAfter", sa.Integer(), nullable=True),
        sa.Column("usageHistoryId", sa.Text(), nullable=True),
        sa.Column("refundedAt", TS, nullable=True),
        sa.Column("refundBalanceAfter", sa.Integer(), nullable=True),
        sa.Column("refundUsageHistoryId", sa.Text(), nullable=True),
        sa.Column("createdAt", TS, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.PrimaryKeyConstraint("idempotencyKey", name="CreditDeduction_pkey"),
    )
    op.execute(DEDUCT)
    op.execute(REFUND)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pedro_refund_credits(text)")
    op.execute('DROP FUNCTION IF EXISTS pedro_deduct_credits(text, integer, "OperationType", text, jsonb)')
    op.drop_table("CreditDeduction")
