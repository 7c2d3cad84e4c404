"""The web app's deduction and refund draw credit lots: the same draw-down as every other writer.

`pedro_deduct_credits` takes its credits from the user's lots in draw-down order (`pedro_lots_take`) and
records them under `deduction:<key>`; `pedro_refund_credits` returns them to those lots, after repaying
any debt the user has (every credit that enters a balance repays open debt first). Everything else
(arguments, idempotency, reasons) is revision 0010's.

Functions only: Prisma sees nothing here.

Revision ID: 0012
Revises: 0011
"""

import importlib

from alembic import op
from sqlalchemy import Connection, text

revision = "0012"
down_revision = "0011"
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
    balance_id text;
    user_id text;
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
    RETURNING k."balanceAfter", k."creditBalanceId", k."userId" INTO credits_remaining, balance_id, user_id;
    IF FOUND THEN
        PERFORM pedro_lots_take(balance_id, user_id, amount, 'deduction:' || idempotency_key, credits_remaining);
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
    repaid integer;
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

    PERFORM pedro_lots_settle(deduction."creditBalanceId");
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
    repaid := pedro_debt_repay(deduction."creditBalanceId", deduction.credits);
    IF repaid > 0 THEN
        credits_remaining := credits_remaining - repaid;
        UPDATE "CreditDeduction" k SET "refundBalanceAfter" = credits_remaining
         WHERE k."idempotencyKey" = idempotency_key;
    END IF;
    PERFORM pedro_lots_return(deduction."creditBalanceId", deduction."userId", deduction.credits - repaid,
                              'deduction:' || idempotency_key, NULL);
    RETURN NEXT;
END
$fn$
"""
_DRAWS_LOTS = text(
    "SELECT position('pedro_lots_take' in prosrc) > 0 FROM pg_proc WHERE proname = 'pedro_deduct_credits'"
)


def applied(connection: Connection) -> bool:
    return bool(connection.execute(_DRAWS_LOTS).scalar())


def upgrade() -> None:
    op.execute(DEDUCT)
    op.execute(REFUND)


def downgrade() -> None:
    previous = importlib.import_module("migrations.versions.0010_deduction_inputs")
    op.execute(previous.DEDUCT)
    op.execute(previous.REFUND)
