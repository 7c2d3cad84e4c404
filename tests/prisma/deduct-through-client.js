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
    balance: (await prisma.creditBalance.findUnique({ where: { clerkUserId } })).creditsRemaining,
  };
  console.log(JSON.stringify(results));
}

main().then(() => prisma.$disconnect(), async (error) => {
  console.error(error);
  await prisma.$disconnect();
  process.exit(1);
});
