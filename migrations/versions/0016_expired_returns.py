"""Credits returned to a lot that has already expired expire at once, in the returning transaction.

`pedro_lots_return` (a refunded deduction, a won chargeback, a restore) used to re-create an expired lot's
credits as a new lot with the old expiry, spendable until the next expiry run. Now the credits it gives back
to an expired lot leave the balance at once, with one `CREDIT_EXPIRY` ledger row keyed by that lot and the
returning fact (`details.expiryKey = expiry:<lot id>:<fact key>`), and it returns how many expired.
`pedro_refund_credits` reports the balance after that expiry. A voided lot is re-created as before.

Functions only: Prisma sees nothing here. Its return type changes (void → integer), so the function is
dropped and created again in this transaction.

Revision ID: 0016
Revises: 0015
"""

import importlib

from alembic import op
from sqlalchemy import Connection, text

from migrations.lots_0011 import LOT_FUNCTIONS_SQL

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NEW_ID = "'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)"
NOW = "now() AT TIME ZONE 'UTC'"
LIVE = 'l."expiredAt" IS NULL AND l."voidedAt" IS NULL'
SIGNATURE = "pedro_lots_return(text, text, integer, text, text)"

RETURN_TO_LOTS = f"""
CREATE FUNCTION pedro_lots_return(
    balance_id text, user_id text, amount integer, fact_key text, grant_key text
) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    drawn record;
    give integer;
    wanted integer := amount;
    expired integer := 0;
BEGIN
    FOR drawn IN
        SELECT d.credits, l.* FROM "CreditLotDraw" d JOIN "CreditLot" l ON l.id = d."lotId"
         WHERE fact_key IS NOT NULL AND d."factKey" = fact_key
         ORDER BY l.priority DESC, l."expiresAt" DESC NULLS FIRST, l."effectiveAt" DESC, l.id DESC
           FOR UPDATE OF l
    LOOP
        EXIT WHEN wanted <= 0;
        give := least(wanted, drawn.credits);
        IF drawn."expiredAt" IS NULL AND drawn."voidedAt" IS NULL THEN
            UPDATE "CreditLot" SET remaining = remaining + give WHERE id = drawn.id;
        ELSIF drawn."voidedAt" IS NULL THEN
            -- Its lot has expired: the credits expire with their return, not at the next expiry run.
            INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details,
                                        timestamp)
            VALUES ({NEW_ID}, user_id, balance_id, 'CREDIT_EXPIRY', give,
                    jsonb_build_object('kind', 'expiry', 'lotId', drawn.id,
                                       'expiryKey', 'expiry:' || drawn.id || ':' || fact_key, 'refundKey', fact_key,
                                       'grantKey', drawn."grantKey", 'category', drawn.category),
                    {NOW});
            expired := expired + give;
        ELSE
            PERFORM pedro_lot_insert(balance_id, user_id, drawn."grantKey", drawn.category, give, give,
                                     drawn."expiresAt", drawn."planId", drawn."effectiveAt", drawn."periodEnd");
        END IF;
        wanted := wanted - give;
    END LOOP;
    IF expired > 0 THEN
        UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" - expired, "updatedAt" = {NOW}
         WHERE id = balance_id;
    END IF;
    IF wanted <= 0 THEN
        RETURN expired;
    END IF;
    SELECT l.* INTO drawn FROM "CreditLot" l
     WHERE grant_key IS NOT NULL AND l."creditBalanceId" = balance_id AND l."grantKey" = grant_key
     ORDER BY ({LIVE}) DESC, l."effectiveAt" DESC, l.id DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM pedro_lot_insert(balance_id, user_id, grant_key, 'adjustment', wanted, wanted, NULL, NULL, NULL);
    ELSIF drawn."expiredAt" IS NULL AND drawn."voidedAt" IS NULL THEN
        UPDATE "CreditLot" SET remaining = remaining + wanted WHERE id = drawn.id;
    ELSE
        PERFORM pedro_lot_insert(balance_id, user_id, grant_key, drawn.category, wanted, wanted,
                                 drawn."expiresAt", drawn."planId", drawn."effectiveAt", drawn."periodEnd");
    END IF;
    RETURN expired;
END
$fn$;
"""
_PREVIOUS_REFUND = importlib.import_module("migrations.versions.0012_lot_deductions").REFUND
_RETURN_CALL = (
    """    PERFORM pedro_lots_return(deduction."creditBalanceId", deduction."userId", deduction.credits - repaid,\n"""
    """                              'deduction:' || idempotency_key, NULL);\n"""
)
_RETURN_AND_EXPIRE = (
    """    expired := pedro_lots_return(deduction."creditBalanceId", deduction."userId",\n"""
    """                                 deduction.credits - repaid, 'deduction:' || idempotency_key, NULL);\n"""
    """    IF expired > 0 THEN
        credits_remaining := credits_remaining - expired;
        UPDATE "CreditDeduction" k SET "refundBalanceAfter" = credits_remaining
         WHERE k."idempotencyKey" = idempotency_key;
    END IF;
"""
)
assert _RETURN_CALL in _PREVIOUS_REFUND and "    repaid integer;\n" in _PREVIOUS_REFUND
REFUND = _PREVIOUS_REFUND.replace(_RETURN_CALL, _RETURN_AND_EXPIRE).replace(
    "    repaid integer;\n", "    repaid integer;\n    expired integer;\n"
)
_PREVIOUS_RETURN = LOT_FUNCTIONS_SQL[
    LOT_FUNCTIONS_SQL.index("CREATE OR REPLACE FUNCTION pedro_lots_return(") : LOT_FUNCTIONS_SQL.index(
        "CREATE OR REPLACE FUNCTION pedro_debt_open("
    )
]
_EXPIRES_RETURNS = text(
    """SELECT position('CREDIT_EXPIRY' in prosrc) > 0 FROM pg_proc
        WHERE proname = 'pedro_lots_return' AND pronamespace = current_schema()::regnamespace"""
)


def applied(connection: Connection) -> bool:
    return bool(connection.execute(_EXPIRES_RETURNS).scalar())


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute(RETURN_TO_LOTS)
    op.execute(REFUND)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute(_PREVIOUS_RETURN)
    op.execute(_PREVIOUS_REFUND)
