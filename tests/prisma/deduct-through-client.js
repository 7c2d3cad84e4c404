// The web app's deduction call, through the generated Prisma Client (run `prisma generate` first).
// Usage: DATABASE_URL=... node deduct-through-client.js CLERK_USER_ID
// Prints one JSON object: the results of the calls below, in order.
'use strict';
const { PrismaClient, OperationType } = require('@prisma/client');
const { PrismaPg } = require('@prisma/adapter-pg');

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) });

// The same function README's "Your web app" shows in TypeScript.
async function deductCredits(clerkUserId, amount, operationType, idempotencyKey, details) {
  const [row] = await prisma.$queryRaw`
    SELECT ok, credits_remaining AS "creditsRemaining", reason
      FROM pedro_deduct_credits(${clerkUserId}, ${amount}::int, ${operationType}::"OperationType",
                                ${idempotencyKey}, ${details == null ? null : JSON.stringify(details)}::jsonb)`;
  return row;
}

async function refundCredits(idempotencyKey, clerkUserId) {
  const [row] = await prisma.$queryRaw`
    SELECT ok, credits_remaining AS "creditsRemaining", reason
      FROM pedro_refund_credits(${idempotencyKey}, ${clerkUserId})`;
  return row;
}

async function chargeOperation(clerkUserId, operationType, idempotencyKey, quantity, details) {
  const [row] = await prisma.$queryRaw`
    SELECT ok, credits_remaining AS "creditsRemaining", cost, reason
      FROM pedro_charge_operation(${clerkUserId}, ${operationType}::"OperationType", ${idempotencyKey},
                                  ${quantity}::int, ${details == null ? null : JSON.stringify(details)}::jsonb)`;
  return row;
}

async function currentPlan(clerkUserId) {
  const [row] = await prisma.$queryRaw`
    SELECT plan_id AS "planId", period_end AS "periodEnd", status FROM pedro_current_plan(${clerkUserId})`;
  return row ?? null;
}

async function creditLots(clerkUserId) {
  return prisma.$queryRaw`
    SELECT category, remaining, expires_at AS "expiresAt", plan_id AS "planId" FROM pedro_credit_lots(${clerkUserId})`;
}

async function main() {
  const clerkUserId = process.argv[2];
  const details = { model: 'flux-schnell', prompt: 'a lighthouse' };
  const results = {
    first: await deductCredits(clerkUserId, 30, OperationType.AI_IMAGE_GENERATION, 'req-1', details),
    again: await deductCredits(clerkUserId, 30, OperationType.AI_IMAGE_GENERATION, 'req-1', details),
    tooMuch: await deductCredits(clerkUserId, 1000, OperationType.AI_TEXT_CHAT, 'req-2', null),
    unknown: await deductCredits('user_nobody', 1, OperationType.AI_TEXT_CHAT, 'req-3', null),
    parallel: await Promise.all(
      Array.from({ length: 10 }, (_, i) => deductCredits(clerkUserId, 20, OperationType.AI_TEXT_CHAT, `p-${i}`, null))),
    refund: await refundCredits('req-1', clerkUserId),
    refundAgain: await refundCredits('req-1', clerkUserId),
    charge: await chargeOperation(clerkUserId, OperationType.AI_IMAGE_GENERATION, 'op-1', 2, { model: 'flux' }),
    chargeAgain: await chargeOperation(clerkUserId, OperationType.AI_IMAGE_GENERATION, 'op-1', 2, { model: 'flux' }),
    unpriced: await chargeOperation(clerkUserId, OperationType.AI_VIDEO_GENERATION, 'op-2', 1, null),
    plan: await currentPlan(clerkUserId),
    lots: await creditLots(clerkUserId),
    balance: (await prisma.creditBalance.findUnique({ where: { clerkUserId } })).creditsRemaining,
  };
  console.log(JSON.stringify(results));
}

main().then(() => prisma.$disconnect(), async (error) => {
  console.error(error);
  await prisma.$disconnect();
  process.exit(1);
});
