-- pedro-ingest revision 0011: credit lots. Applies whether or not `pedro-ingest migrate` has already
-- created them. Copy this folder into prisma/migrations/ as <timestamp>_pedro_ingest_0011, unchanged.
-- The lot functions and the opening lots of existing balances come from `pedro-ingest migrate`
-- (Prisma does not model functions), before or after this migration.

-- CreateTable
CREATE TABLE IF NOT EXISTS "CreditLot" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "creditBalanceId" TEXT NOT NULL,
    "grantKey" TEXT,
    "category" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "remaining" INTEGER NOT NULL,
    "priority" INTEGER NOT NULL,
    "effectiveAt" TIMESTAMP(3) NOT NULL,
    "expiresAt" TIMESTAMP(3),
    "periodEnd" TIMESTAMP(3),
    "planId" TEXT,
    "expiredAt" TIMESTAMP(3),
    "voidedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CreditLot_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE IF NOT EXISTS "CreditLotDraw" (
    "factKey" TEXT NOT NULL,
    "lotId" TEXT NOT NULL,
    "credits" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CreditLotDraw_pkey" PRIMARY KEY ("factKey","lotId")
);

-- CreateTable
CREATE TABLE IF NOT EXISTS "CreditDebt" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "creditBalanceId" TEXT NOT NULL,
    "factKey" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "remaining" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "settledAt" TIMESTAMP(3),
    "cancelledAt" TIMESTAMP(3),

    CONSTRAINT "CreditDebt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX IF NOT EXISTS "CreditLot_creditBalanceId_idx" ON "CreditLot"("creditBalanceId");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "CreditLot_grantKey_idx" ON "CreditLot"("grantKey");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "CreditLot_expiresAt_idx" ON "CreditLot"("expiresAt");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "CreditDebt_creditBalanceId_idx" ON "CreditDebt"("creditBalanceId");
