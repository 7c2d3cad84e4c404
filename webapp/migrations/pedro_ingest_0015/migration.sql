-- pedro-ingest revision 0015: the Asaas subscription's cycle, and the plan lots whose period awaits it.
-- Applies whether or not `pedro-ingest migrate` has already added them. Copy this folder into
-- prisma/migrations/ as <timestamp>_pedro_ingest_0015, unchanged.

-- AlterTable
ALTER TABLE "AsaasSubscriptionLink" ADD COLUMN IF NOT EXISTS "cycle" TEXT;

-- AlterTable
ALTER TABLE "CreditLot" ADD COLUMN IF NOT EXISTS "provisionalCycleOf" TEXT;

-- CreateIndex
CREATE INDEX IF NOT EXISTS "CreditLot_provisionalCycleOf_idx" ON "CreditLot"("provisionalCycleOf");
