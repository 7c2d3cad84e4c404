-- pedro-ingest revisions 0002 to 0005, written so that it applies whether or not `pedro-ingest migrate`
-- has already created these objects (every statement is IF NOT EXISTS, foreign keys sit inside
-- CREATE TABLE). Copy this folder into prisma/migrations/ as <timestamp>_pedro_ingest_0005, unchanged.
-- The result is exactly what Prisma generates for pedro-ingest.prisma, so Prisma sees no drift.

-- AlterEnum
ALTER TYPE "OperationType" ADD VALUE IF NOT EXISTS 'CREDIT_GRANT';
ALTER TYPE "OperationType" ADD VALUE IF NOT EXISTS 'CREDIT_REVERSAL';
ALTER TYPE "OperationType" ADD VALUE IF NOT EXISTS 'CREDIT_ADJUSTMENT';

-- CreateTable
CREATE TABLE IF NOT EXISTS "WebhookEvent" (
    "id" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "eventId" TEXT NOT NULL,
    "eventType" TEXT NOT NULL,
    "payload" JSONB,
    "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "occurredAt" TIMESTAMP(3),
    "status" TEXT NOT NULL DEFAULT 'received',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,
    "lastErrorDetail" TEXT,
    "processedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "WebhookEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE IF NOT EXISTS "CreditGrant" (
    "id" TEXT NOT NULL,
    "grantKey" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "planId" TEXT,
    "amount" INTEGER NOT NULL,
    "sourceEventId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CreditGrant_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "CreditGrant_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "CreditGrant_planId_fkey" FOREIGN KEY ("planId") REFERENCES "Plan"("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE IF NOT EXISTS "EntityVersion" (
    "entityType" TEXT NOT NULL,
    "entityId" TEXT NOT NULL,
    "version" BIGINT NOT NULL,
    "deleted" BOOLEAN NOT NULL DEFAULT false,
    "sourceEventId" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "EntityVersion_pkey" PRIMARY KEY ("entityType","entityId")
);

-- CreateTable
CREATE TABLE IF NOT EXISTS "AsaasSubscriptionLink" (
    "id" TEXT NOT NULL,
    "asaasSubscriptionId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "planId" TEXT,
    "asaasCustomerId" TEXT,
    "externalReference" TEXT,
    "sourceEventId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AsaasSubscriptionLink_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "AsaasSubscriptionLink_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "AsaasSubscriptionLink_planId_fkey" FOREIGN KEY ("planId") REFERENCES "Plan"("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE IF NOT EXISTS "alembic_version" (
    "version_num" VARCHAR(32) NOT NULL,

    CONSTRAINT "alembic_version_pkc" PRIMARY KEY ("version_num")
);

-- CreateIndex
CREATE INDEX IF NOT EXISTS "WebhookEvent_status_receivedAt_idx" ON "WebhookEvent"("status", "receivedAt");

-- CreateIndex
CREATE UNIQUE INDEX IF NOT EXISTS "WebhookEvent_provider_eventId_key" ON "WebhookEvent"("provider", "eventId");

-- CreateIndex
CREATE UNIQUE INDEX IF NOT EXISTS "CreditGrant_grantKey_key" ON "CreditGrant"("grantKey");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "CreditGrant_userId_idx" ON "CreditGrant"("userId");

-- CreateIndex
CREATE UNIQUE INDEX IF NOT EXISTS "AsaasSubscriptionLink_asaasSubscriptionId_key" ON "AsaasSubscriptionLink"("asaasSubscriptionId");

-- CreateIndex
CREATE INDEX IF NOT EXISTS "AsaasSubscriptionLink_userId_idx" ON "AsaasSubscriptionLink"("userId");
