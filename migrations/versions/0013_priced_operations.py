"""Priced operations, the current plan and the lot view, for the web app.

- `pedro_charge_operation(clerk_user_id, operation_type, idempotency_key, quantity, details)` →
  `(ok, credits_remaining, cost, reason)`: cost = the current plan's `Plan.features` price for the
  operation, else `AdminSettings.featureCosts`, times `quantity`. A price is a JSON integer ≥ 0 under the
  operation's name (0 = free); any other value counts as absent. Checks, in order: arguments
  (`invalid_amount`, `invalid_details`) → `unknown_user` / `inactive_user` → `unpriced_operation` →
  `insufficient_credits`. The deduction itself is `pedro_deduct_credits` (same key, same refund).
- `pedro_current_plan(clerk_user_id)` → `(plan_id, period_end, status)`: the plan of the user's
  latest-effective live `plan` or `rollover` lot; `status` from the latest `SubscriptionEvent`.
- `pedro_credit_lots(clerk_user_id)` → one row per live lot holding credits, in draw-down order, plus one
  row of category `debt` (negative `remaining`) while the user owes credits.

Functions only: Prisma sees nothing here.

Revision ID: 0013
Revises: 0012
"""

from alembic import op
from sqlalchemy import Connection

from migrations.existing import has_functions

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

DETAILS_LIMIT = 16384
FUNCTIONS = {
    "pedro_current_plan": "pedro_current_plan(text)",
    "pedro_credit_lots": "pedro_credit_lots(text)",
    "pedro_operation_price": "pedro_operation_price(jsonb, text)",
    "pedro_charge_operation": 'pedro_charge_operation(text, "OperationType", text, integer, jsonb)',
}
LIVE = 'l."expiredAt" IS NULL AND l."voidedAt" IS NULL'

SQL = f"""
CREATE OR REPLACE FUNCTION pedro_operation_price(prices jsonb, operation text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN jsonb_typeof(prices) = 'object' AND jsonb_typeof(prices -> operation) = 'number'
                 AND (prices ->> operation)::numeric BETWEEN 0 AND 2147483647
                 AND (prices ->> operation)::numeric = trunc((prices ->> operation)::numeric)
                THEN (prices ->> operation)::integer END
$fn$;

CREATE OR REPLACE FUNCTION pedro_current_plan(clerk_user_id text)
RETURNS TABLE (plan_id text, period_end timestamptz, status text)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $fn$
    SELECT l."planId", l."periodEnd" AT TIME ZONE 'UTC',
           CASE WHEN s.status = 'past_due' THEN 'past_due'
                WHEN s.status IN ('canceled', 'cancelled', 'ended', 'expired', 'abandoned') THEN 'canceled'
                ELSE 'active' END
      FROM "CreditBalance" b
      JOIN LATERAL (SELECT l."planId", l."periodEnd" FROM "CreditLot" l
                     WHERE l."creditBalanceId" = b.id AND l.category IN ('plan', 'rollover') AND {LIVE}
                     ORDER BY l."effectiveAt" DESC, l.id DESC LIMIT 1) l ON true
      LEFT JOIN LATERAL (SELECT e.status FROM "SubscriptionEvent" e WHERE e."clerkUserId" = b."clerkUserId"
                          ORDER BY e."occurredAt" DESC, e."createdAt" DESC LIMIT 1) s ON true
     WHERE b."clerkUserId" = clerk_user_id AND l."planId" IS NOT NULL
$fn$;

CREATE OR REPLACE FUNCTION pedro_credit_lots(clerk_user_id text)
RETURNS TABLE (category text, remaining integer, expires_at timestamptz, plan_id text)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $fn$
    (SELECT l.category, l.remaining, l."expiresAt" AT TIME ZONE 'UTC', l."planId"
       FROM "CreditBalance" b JOIN "CreditLot" l ON l."creditBalanceId" = b.id
      WHERE b."clerkUserId" = clerk_user_id AND {LIVE} AND l.remaining > 0
      ORDER BY l.priority, l."expiresAt" NULLS LAST, l."effectiveAt", l.id)
    UNION ALL
    SELECT 'debt', -sum(d.remaining)::integer, NULL, NULL
      FROM "CreditBalance" b JOIN "CreditDebt" d ON d."creditBalanceId" = b.id
     WHERE b."clerkUserId" = clerk_user_id AND d.remaining > 0
    HAVING sum(d.remaining) > 0
$fn$;

CREATE OR REPLACE FUNCTION pedro_charge_operation(
    clerk_user_id text, operation_type "OperationType", idempotency_key text, quantity integer, details jsonb
) RETURNS TABLE (ok boolean, credits_remaining integer, cost integer, reason text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    account record;
    price integer;
    total bigint;
    prior "CreditDeduction"%ROWTYPE;
    result record;
BEGIN
    ok := false;
    IF quantity IS NULL OR quantity <= 0 THEN
        reason := 'invalid_amount';
        RETURN NEXT;
        RETURN;
    END IF;
    IF octet_length(details::text) > {DETAILS_LIMIT} THEN
        reason := 'invalid_details';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT b."creditsRemaining" AS balance, u."isActive" AS active INTO account
      FROM "CreditBalance" b JOIN "User" u ON u.id = b."userId"
     WHERE clerk_user_id IS NOT NULL AND b."clerkUserId" = clerk_user_id;
    IF NOT FOUND THEN
        reason := 'unknown_user';
        RETURN NEXT;
        RETURN;
    END IF;
    IF NOT account.active THEN
        credits_remaining := account.balance;
        reason := 'inactive_user';
        RETURN NEXT;
        RETURN;
    END IF;
    price := COALESCE(
        (SELECT pedro_operation_price(p.features, operation_type::text)
           FROM pedro_current_plan(clerk_user_id) c JOIN "Plan" p ON p.id = c.plan_id),
        (SELECT pedro_operation_price(a."featureCosts", operation_type::text)
           FROM "AdminSettings" a WHERE a.id = 'singleton'));
    IF price IS NULL THEN
        credits_remaining := account.balance;
        reason := 'unpriced_operation';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO prior FROM "CreditDeduction" k
     WHERE k."idempotencyKey" = idempotency_key AND k."clerkUserId" = clerk_user_id
       AND k."operationType" = operation_type;
    IF FOUND THEN  -- the same call again: the first successful answer, whatever the price is now
        ok := true;
        credits_remaining := prior."balanceAfter";
        cost := prior.credits;
        RETURN NEXT;
        RETURN;
    END IF;
    total := price::bigint * quantity;
    IF total > 2147483647 THEN
        reason := 'invalid_amount';
        RETURN NEXT;
        RETURN;
    END IF;
    cost := total;
    IF cost = 0 THEN
        ok := true;
        credits_remaining := account.balance;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO result FROM pedro_deduct_credits(clerk_user_id, cost, operation_type, idempotency_key, details) d;
    ok := result.ok;
    credits_remaining := result.credits_remaining;
    reason := result.reason;
    RETURN NEXT;
END
$fn$;
"""


def applied(connection: Connection) -> bool:
    return has_functions(connection, *FUNCTIONS)


def upgrade() -> None:
    op.execute(SQL)


def downgrade() -> None:
    for signature in reversed(FUNCTIONS.values()):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
