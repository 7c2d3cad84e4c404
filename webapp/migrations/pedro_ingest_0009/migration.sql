-- pedro-ingest revision 0009: the Asaas Checkout links (checkout id → reference, user, plan, charges
-- waiting for their checkout). Applies whether or not `pedro-ingest migrate` has already created it. Copy
-- this folder into prisma/migrations/ as <timestamp>_pedro_ingest_0009, unchanged.

-- CreateTable
CREATE TABLE IF NOT EXISTS "AsaasCheckoutLink" (
    "id" TEXT NOT NULL,
    "asaasCheckoutId" TEXT NOT NULL,
    "userId" TEXT,
    "planId" TEXT,
    "externalReference" TEXT,
    "chargeType" TEXT,
    "asaasSubscriptionId" TEXT,
    "status" TEXT,
    "pendingEventIds" JSONB,
    "sourceEventId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AsaasCheckoutLink_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX IF NOT EXISTS "AsaasCheckoutLink_asaasCheckoutId_key" ON "AsaasCheckoutLink"("asaasCheckoutId");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "AsaasCheckoutLink_userId_idx" ON "AsaasCheckoutLink"("userId");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "AsaasCheckoutLink_asaasSubscriptionId_idx" ON "AsaasCheckoutLink"("asaasSubscriptionId");
