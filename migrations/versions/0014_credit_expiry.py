"""Expiry of credit lots as ledger facts, and the rollover of a plan period's rest at renewal.

- `OperationType` gains `CREDIT_EXPIRY`: one ledger row per expired lot (`details.lotId`), written in the
  transaction that marks the lot expired and lowers the balance.
- `pedro_expire_lots(due_before, batch)`: expires up to `batch` due lots, each exactly once (a lot is
  expired only while `expiredAt` is null, under its balance's lock). Balances are locked first, in id
  order, like every other writer, so a deduction racing it waits or goes first, and never double-spends.
  Set-based: one statement per batch. An expired lot keeps `remaining` as it was: what expired.
- `pedro_lots_rollover(balance, grant_key, cap)`: at renewal (the plan lot `grant_key` just made), the
  user's older live plan and rollover lots give up to `cap` credits (NULL: all) to one `rollover` lot that
  expires with the new period. If an older period's lot already expired although the new period began
  before that expiry (a late renewal), the part it would have carried is granted again once, keyed
  `rollover:<lot id>` (returned for the caller's ledger row).

`ALTER TYPE … ADD VALUE` takes no table lock. The downgrade drops the functions and leaves the enum value:
PostgreSQL cannot remove one, and revision 0003's downgrade rebuilds the type without pedro-ingest's values.

Revision ID: 0014
Revises: 0013
"""

from alembic import op
from sqlalchemy import Connection

from migrations.existing import enum_labels, has_functions

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NEW_ID = "'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)"
NOW = "now() AT TIME ZONE 'UTC'"
LIVE = 'l."expiredAt" IS NULL AND l."voidedAt" IS NULL'
FUNCTIONS = {
    "pedro_expire_lots": "pedro_expire_lots(timestamp, integer)",
    "pedro_lots_rollover": "pedro_lots_rollover(text, text, integer)",
}

EXPIRE = f"""
CREATE OR REPLACE FUNCTION pedro_expire_lots(due_before timestamp, batch integer)
RETURNS TABLE (lots integer, credits bigint)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    balance_ids text[];
BEGIN
    SELECT array_agg(b.id ORDER BY b.id) INTO balance_ids FROM (
        SELECT b.id FROM "CreditBalance" b
         WHERE b.id IN (SELECT l."creditBalanceId" FROM "CreditLot" l
                         WHERE l."expiresAt" <= due_before AND {LIVE} LIMIT batch)
         ORDER BY b.id FOR UPDATE OF b) b;
    lots := 0;
    credits := 0;
    IF balance_ids IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    WITH due AS (
        SELECT l.id, l."userId", l."creditBalanceId", l.remaining, l."grantKey", l.category FROM "CreditLot" l
         WHERE l."creditBalanceId" = ANY(balance_ids) AND l."expiresAt" <= due_before AND {LIVE}
         ORDER BY l.id FOR UPDATE OF l
    ), expired AS (
        UPDATE "CreditLot" l SET "expiredAt" = {NOW} FROM due WHERE l.id = due.id
        RETURNING due.id, due."userId", due."creditBalanceId", due.remaining, due."grantKey", due.category
    ), per_balance AS (
        SELECT e."creditBalanceId" AS id, sum(e.remaining)::integer AS total FROM expired e GROUP BY 1
    ), debited AS (
        UPDATE "CreditBalance" b SET "creditsRemaining" = b."creditsRemaining" - p.total, "updatedAt" = {NOW}
          FROM per_balance p WHERE b.id = p.id AND p.total > 0
        RETURNING b.id
    ), ledger AS (
        INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details,
                                    timestamp)
        SELECT {NEW_ID}, e."userId", e."creditBalanceId", 'CREDIT_EXPIRY', e.remaining,
               jsonb_build_object('kind', 'expiry', 'lotId', e.id, 'expiryKey', 'expiry:' || e.id,
                                  'grantKey', e."grantKey", 'category', e.category),
               {NOW}
          FROM expired e WHERE e.remaining > 0
        RETURNING 1
    )
    SELECT count(*)::integer, COALESCE(sum(e.remaining), 0) INTO lots, credits FROM expired e;
    RETURN NEXT;
END
$fn$;
"""

ROLLOVER = f"""
CREATE OR REPLACE FUNCTION pedro_lots_rollover(balance_id text, grant_key text, cap integer)
RETURNS TABLE (carried integer, regranted integer, regrant_key text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    fresh "CreditLot"%ROWTYPE;
    old record;
    room integer;
    take integer;
    late "CreditLot"%ROWTYPE;
    repaid integer := 0;
BEGIN
    carried := 0;
    regranted := 0;
    SELECT * INTO fresh FROM "CreditLot" l
     WHERE l."creditBalanceId" = balance_id AND l."grantKey" = grant_key AND l.category = 'plan'
     ORDER BY l."createdAt" DESC, l.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;
    room := COALESCE(cap, 2147483647);
    FOR old IN
        SELECT l.id, l.remaining FROM "CreditLot" l
         WHERE l."creditBalanceId" = fresh."creditBalanceId" AND l.id <> fresh.id AND {LIVE}
           AND l.category IN ('plan', 'rollover') AND l."effectiveAt" <= fresh."effectiveAt" AND l.remaining > 0
         ORDER BY l."expiresAt" NULLS LAST, l."effectiveAt", l.id
           FOR UPDATE
    LOOP
        EXIT WHEN room <= 0;
        take := least(room, old.remaining);
        UPDATE "CreditLot" SET remaining = remaining - take WHERE id = old.id;
        carried := carried + take;
        room := room - take;
    END LOOP;
    -- A late renewal: the previous period's lot expired before this grant, though this period began before
    -- that expiry was due. It gets back, once, what the rollover would have carried.
    SELECT l.* INTO late FROM "CreditLot" l
     WHERE l."creditBalanceId" = fresh."creditBalanceId" AND l.id <> fresh.id AND l."expiredAt" IS NOT NULL
       AND l.category IN ('plan', 'rollover') AND l."effectiveAt" <= fresh."effectiveAt"
       AND fresh."effectiveAt" < l."expiresAt" AND l.remaining > 0
       AND NOT EXISTS (SELECT 1 FROM "CreditGrant" g WHERE g."grantKey" = 'rollover:' || l.id)
     ORDER BY l."expiredAt" DESC, l.id DESC LIMIT 1;
    IF FOUND AND room > 0 THEN
        regranted := least(room, late.remaining);
        regrant_key := 'rollover:' || late.id;
        INSERT INTO "CreditGrant" (id, "grantKey", "userId", "planId", amount, "createdAt")
        VALUES ({NEW_ID}, regrant_key, fresh."userId", NULL, regranted, {NOW});
        UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + regranted, "updatedAt" = {NOW}
         WHERE id = fresh."creditBalanceId";
        repaid := pedro_debt_repay(fresh."creditBalanceId", regranted);
    END IF;
    IF carried + regranted > 0 THEN
        PERFORM pedro_lot_insert(fresh."creditBalanceId", fresh."userId", fresh."grantKey", 'rollover',
                                 carried + regranted, carried + regranted - repaid, fresh."expiresAt",
                                 fresh."planId", fresh."effectiveAt", fresh."periodEnd");
    END IF;
    RETURN NEXT;
END
$fn$;
"""


def applied(connection: Connection) -> bool:
    return "CREDIT_EXPIRY" in enum_labels(connection, "OperationType") and has_functions(connection, *FUNCTIONS)


def upgrade() -> None:
    with op.get_context().autocommit_block():  # a new enum value is usable only once its transaction committed
        op.execute("ALTER TYPE \"OperationType\" ADD VALUE IF NOT EXISTS 'CREDIT_EXPIRY'")
    op.execute(EXPIRE)
    op.execute(ROLLOVER)


def downgrade() -> None:
    op.execute(
        """DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM "UsageHistory" WHERE "operationType"::text = 'CREDIT_EXPIRY') THEN
            RAISE EXCEPTION 'UsageHistory rows record credit expiry; cannot downgrade';
          END IF; END $$"""
    )
    for signature in FUNCTIONS.values():
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
