-- pedro-ingest revision 0007: an index for the operator console's newest-first pages. Applies whether or
-- not `pedro-ingest migrate` has already created it. Copy this folder into prisma/migrations/ as
-- <timestamp>_pedro_ingest_0007, unchanged.

-- CreateIndex
CREATE INDEX IF NOT EXISTS "WebhookEvent_receivedAt_idx" ON "WebhookEvent"("receivedAt");
