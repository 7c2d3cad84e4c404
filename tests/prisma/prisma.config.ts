// Prisma 6.19.3 config: JS schema engine (@prisma/schema-engine-wasm) over a wrapped @prisma/adapter-pg.
// Needs env: DATABASE_URL. Recommended: PRISMA_CLIENT_ENGINE_TYPE=client CHECKPOINT_DISABLE=1.
import path from 'node:path';
import { defineConfig } from 'prisma/config';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { wrappedPrismaPg } = require('./wrapped-adapter.js');

// Offline defaults (the config is loaded before the CLI inspects the schema):
// - PRISMA_CLIENT_ENGINE_TYPE=client: otherwise the CLI downloads libquery_engine from binaries.prisma.sh.
// - CHECKPOINT_DISABLE=1: no update/telemetry check.
// - DIRECT_URL: the web app's datasource has `directUrl = env("DIRECT_URL")`; if it is unset the CLI
//   cannot read the schema, silently falls back to the "library" engine and tries to download it.
process.env.PRISMA_CLIENT_ENGINE_TYPE ??= 'client';
process.env.CHECKPOINT_DISABLE ??= '1';
if (process.env.DATABASE_URL) process.env.DIRECT_URL ??= process.env.DATABASE_URL;

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  // The web app's schema: its migrations folder is beside it.
  schema: process.env.PRISMA_SCHEMA ?? path.join(__dirname, 'schema.prisma'),
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is not set');
    return wrappedPrismaPg(url);
  },
});
