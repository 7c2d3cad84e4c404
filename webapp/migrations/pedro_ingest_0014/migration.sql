-- pedro-ingest revision 0014: the ledger's credit expiry rows. Applies whether or not
-- `pedro-ingest migrate` has already added the value. Copy this folder into prisma/migrations/ as
-- <timestamp>_pedro_ingest_0014, unchanged. The expiry and rollover functions come from
-- `pedro-ingest migrate` (Prisma does not model functions), before or after this migration.

-- AlterEnum
ALTER TYPE "OperationType" ADD VALUE IF NOT EXISTS 'CREDIT_EXPIRY';
