-- pedro-ingest revision 0006: the table of credit deduction keys. Applies whether or not
-- `pedro-ingest migrate` has already created it. Copy this folder into prisma/migrations/ as
-- <timestamp>_pedro_ingest_0006, unchanged. The functions pedro_deduct_credits and
-- pedro_refund_credits come from `pedro-ingest migrate` (Prisma does not model functions).

-- CreateTable
CREATE TABLE IF NOT EXISTS "CreditDeduction" (
    "idempotencyKey" TEXT NOT NULL,
    "clerkUserId" TEXT NOT NULL,
    "userId" TEXT,
    "creditBalanceId" TEXT,
    "operationType" "OperationType" NOT NULL,
    "credits" INTEGER NOT NULL,
    "balanceAfter" INTEGER,
    "usageHistoryId" TEXT,
    "refundedAt" TIMESTAMP(3),
    "refundBalanceAfter" INTEGER,
    "refundUsageHistoryId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CreditDeduction_pkey" PRIMARY KEY ("idempotencyKey")
);
