"""The lot functions of revision 0011, as installed then (a later revision that changes one ships its own copy).

Every function expects its caller to hold the balance row's lock (`SELECT … FOR UPDATE` or the `UPDATE`
that changes it): lots are locked after their balance, so no two writers of one user interleave.

- `pedro_lots_draw`: the draw-down, written once: priority ascending → soonest expiry (never-expiring
  last) → effective time → id, with an optional grant's own lot first. Each draw is recorded under the
  fact's key in `CreditLotDraw`.
- `pedro_lots_take`: the web app's draw, which never falls short: when the lots hold less than the balance
  had (a balance the web app created, before reconciliation gave it its opening lot), the difference
  becomes one lot (`opening` for a balance that never had credits in a lot).
- `pedro_lots_settle`: make Σ live lots equal to the balance (an `opening` lot for a balance with none).
- `pedro_lots_return`: give credits back to the lots a fact drew from (a lot that is no longer live is
  re-created with its category, plan and expiry), the rest to a given grant's lot, else an adjustment lot.
- `pedro_debt_open`, `pedro_debt_repay`: a reversal's shortfall as a debt; credits entering a balance repay
  open debts first (oldest first), each repayment one `CREDIT_REVERSAL` ledger row (`debt_repayment`).
- `pedro_credit_add`, `pedro_credit_remove`, `pedro_credit_return`: the balance
  statements of pedro-ingest's Python writers, each with its lot changes, in one call.
"""

NEW_ID = "'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)"
NOW = "now() AT TIME ZONE 'UTC'"
LIVE = 'l."expiredAt" IS NULL AND l."voidedAt" IS NULL'

FUNCTIONS = {
    "pedro_lot_priority": "pedro_lot_priority(text)",
    "pedro_lot_insert": (
        "pedro_lot_insert(text, text, text, text, integer, integer, timestamp, text, timestamp, timestamp)"
    ),
    "pedro_lots_draw": "pedro_lots_draw(text, integer, text, text)",
    "pedro_lots_take": "pedro_lots_take(text, text, integer, text, integer)",
    "pedro_lots_settle": "pedro_lots_settle(text)",
    "pedro_lots_return": "pedro_lots_return(text, text, integer, text, text)",
    "pedro_debt_open": "pedro_debt_open(text, text, text, integer)",
    "pedro_debt_repay": "pedro_debt_repay(text, integer)",
    "pedro_credit_add": "pedro_credit_add(text, integer, text, text, timestamp, text, timestamp, timestamp)",
    "pedro_credit_remove": "pedro_credit_remove(text, integer, text, text)",
    "pedro_credit_return": "pedro_credit_return(text, integer, text, text)",
}

LOT_FUNCTIONS_SQL = f"""
CREATE OR REPLACE FUNCTION pedro_lot_priority(category text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN category IN ('plan', 'rollover', 'trial') THEN 10 WHEN category = 'purchase' THEN 30 ELSE 20 END
$fn$;

CREATE OR REPLACE FUNCTION pedro_lot_insert(
    balance_id text, user_id text, grant_key text, category text, amount integer, remaining integer,
    expires_at timestamp, plan_id text, effective_at timestamp, period_end timestamp DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    lot_id text := {NEW_ID};
BEGIN
    INSERT INTO "CreditLot" (id, "userId", "creditBalanceId", "grantKey", category, amount, remaining, priority,
                             "effectiveAt", "expiresAt", "periodEnd", "planId", "createdAt")
    VALUES (lot_id, user_id, balance_id, grant_key, category, amount, remaining, pedro_lot_priority(category),
            COALESCE(effective_at, {NOW}), expires_at, period_end, plan_id, {NOW});
    RETURN lot_id;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_lots_draw(balance_id text, amount integer, fact_key text, first_grant text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    lot record;
    take integer;
    wanted integer := amount;
BEGIN
    IF wanted IS NULL OR wanted <= 0 THEN
        RETURN 0;
    END IF;
    FOR lot IN
        SELECT l.id, l.remaining FROM "CreditLot" l
         WHERE l."creditBalanceId" = balance_id AND {LIVE} AND l.remaining > 0
         ORDER BY (first_grant IS NOT NULL AND l."grantKey" IS NOT DISTINCT FROM first_grant) DESC,
                  l.priority, l."expiresAt" NULLS LAST, l."effectiveAt", l.id
           FOR UPDATE
    LOOP
        take := least(wanted, lot.remaining);
        UPDATE "CreditLot" SET remaining = remaining - take WHERE id = lot.id;
        INSERT INTO "CreditLotDraw" ("factKey", "lotId", credits, "createdAt") VALUES (fact_key, lot.id, take, {NOW})
        ON CONFLICT ("factKey", "lotId") DO UPDATE SET credits = "CreditLotDraw".credits + EXCLUDED.credits;
        wanted := wanted - take;
        EXIT WHEN wanted = 0;
    END LOOP;
    RETURN amount - wanted;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_lots_take(
    balance_id text, user_id text, amount integer, fact_key text, balance_after integer
) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    short integer := amount - pedro_lots_draw(balance_id, amount, fact_key, NULL);
    live integer;
    lot_id text;
BEGIN
    IF short > 0 THEN
        SELECT COALESCE(sum(l.remaining), 0) INTO live FROM "CreditLot" l
         WHERE l."creditBalanceId" = balance_id AND {LIVE};
        lot_id := pedro_lot_insert(
            balance_id, user_id, NULL,
            CASE WHEN EXISTS (SELECT 1 FROM "CreditLot" l WHERE l."creditBalanceId" = balance_id AND l.amount > 0)
                 THEN 'adjustment' ELSE 'opening' END,
            short + greatest(balance_after - live, 0), greatest(balance_after - live, 0), NULL, NULL, NULL);
        INSERT INTO "CreditLotDraw" ("factKey", "lotId", credits, "createdAt") VALUES (fact_key, lot_id, short, {NOW});
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_lots_settle(balance_id text) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    balance record;
    live bigint;
    known boolean;
    difference integer;
BEGIN
    SELECT b."userId", b."creditsRemaining" INTO balance FROM "CreditBalance" b WHERE b.id = balance_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT COALESCE(sum(l.remaining) FILTER (WHERE {LIVE}), 0), count(*) FILTER (WHERE l.amount > 0) > 0
      INTO live, known
      FROM "CreditLot" l WHERE l."creditBalanceId" = balance_id;
    difference := greatest(balance."creditsRemaining", 0) - live;
    IF difference > 0 THEN
        PERFORM pedro_lot_insert(balance_id, balance."userId", NULL,
                                 CASE WHEN known THEN 'adjustment' ELSE 'opening' END,
                                 difference, difference, NULL, NULL, NULL);
    ELSIF difference < 0 THEN
        PERFORM pedro_lots_draw(balance_id, -difference, 'settle:' || {NEW_ID}, NULL);
    END IF;
    RETURN difference;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_lots_return(
    balance_id text, user_id text, amount integer, fact_key text, grant_key text
) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    drawn record;
    give integer;
    wanted integer := amount;
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
        ELSE
            PERFORM pedro_lot_insert(balance_id, user_id, drawn."grantKey", drawn.category, give, give,
                                     drawn."expiresAt", drawn."planId", drawn."effectiveAt", drawn."periodEnd");
        END IF;
        wanted := wanted - give;
    END LOOP;
    IF wanted <= 0 THEN
        RETURN;
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
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_debt_open(balance_id text, user_id text, fact_key text, amount integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
BEGIN
    IF amount > 0 THEN
        INSERT INTO "CreditDebt" (id, "userId", "creditBalanceId", "factKey", amount, remaining, "createdAt")
        VALUES ({NEW_ID}, user_id, balance_id, fact_key, amount, amount, {NOW});
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_debt_repay(balance_id text, available integer) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    debt record;
    pay integer;
    repaid integer := 0;
BEGIN
    FOR debt IN
        SELECT d.* FROM "CreditDebt" d WHERE d."creditBalanceId" = balance_id AND d.remaining > 0
         ORDER BY d."createdAt", d.id FOR UPDATE
    LOOP
        EXIT WHEN repaid >= available;
        pay := least(available - repaid, debt.remaining);
        UPDATE "CreditDebt" SET remaining = remaining - pay,
               "settledAt" = CASE WHEN remaining = pay THEN {NOW} END
         WHERE id = debt.id;
        INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details,
                                    timestamp)
        VALUES ({NEW_ID}, debt."userId", balance_id, 'CREDIT_REVERSAL', pay,
                jsonb_build_object('kind', 'debt_repayment', 'debtKey', debt."factKey", 'debtId', debt.id), {NOW});
        repaid := repaid + pay;
    END LOOP;
    IF repaid > 0 THEN
        UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" - repaid, "updatedAt" = {NOW}
         WHERE id = balance_id;
    END IF;
    RETURN repaid;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_credit_add(
    user_id text, amount integer, grant_key text, category text, expires_at timestamp, plan_id text,
    period_end timestamp DEFAULT NULL, effective_at timestamp DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    balance_id text;
    repaid integer;
BEGIN
    SELECT b.id INTO balance_id FROM "CreditBalance" b WHERE b."userId" = user_id FOR UPDATE;
    PERFORM pedro_lots_settle(balance_id);
    UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + amount, "updatedAt" = {NOW}
     WHERE id = balance_id;
    IF amount > 0 THEN
        repaid := pedro_debt_repay(balance_id, amount);
        PERFORM pedro_lot_insert(balance_id, user_id, grant_key, category, amount, amount - repaid, expires_at,
                                 plan_id, effective_at, period_end);
    END IF;
    RETURN balance_id;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_credit_remove(user_id text, amount integer, fact_key text, first_grant text)
RETURNS TABLE (balance_id text, removed integer)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    before integer;
BEGIN
    SELECT b.id, b."creditsRemaining" INTO balance_id, before FROM "CreditBalance" b WHERE b."userId" = user_id
       FOR UPDATE;
    PERFORM pedro_lots_settle(balance_id);
    removed := least(greatest(before, 0), amount);
    UPDATE "CreditBalance" SET "creditsRemaining" = before - removed, "updatedAt" = {NOW} WHERE id = balance_id;
    PERFORM pedro_lots_draw(balance_id, removed, fact_key, first_grant);
    RETURN NEXT;
END
$fn$;

CREATE OR REPLACE FUNCTION pedro_credit_return(user_id text, amount integer, fact_key text, grant_key text)
RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    balance_id text;
BEGIN
    SELECT b.id INTO balance_id FROM "CreditBalance" b WHERE b."userId" = user_id FOR UPDATE;
    PERFORM pedro_lots_settle(balance_id);
    UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + amount, "updatedAt" = {NOW}
     WHERE id = balance_id;
    PERFORM pedro_lots_return(balance_id, user_id, amount - pedro_debt_repay(balance_id, amount), fact_key, grant_key);
    RETURN balance_id;
END
$fn$;
"""
