// PrismaPg (@prisma/adapter-pg 6.19.3) wrapped so that the schema engine can describe a database.
// adapter-pg throws "UnsupportedNativeDataType" for the catalog types `name` (OID 19) and the
// one-byte `"char"` (OID 18) that the schema describer selects from pg_catalog. This wrapper makes
// result fields of those types read as text (pg returns them as JS strings already) and reports
// `"char"` columns as ColumnType Character (6), `name` columns as Text (7).
'use strict';
const { PrismaPg } = require('@prisma/adapter-pg');

const OID_CHAR = 18, OID_NAME = 19, OID_TEXT = 25;
const COLUMN_TYPE_CHARACTER = 6; // ColumnTypeEnum.Character in @prisma/driver-adapter-utils

function wrapQueryable(q) {
  if (!q || q.__pkWrapped) return q;
  q.__pkWrapped = true;
  const performIO = q.performIO.bind(q);
  const queryRaw = q.queryRaw.bind(q);
  const charCols = new WeakMap(); // query object -> indices of "char" columns (safe under concurrency)
  q.performIO = async (query) => {
    const res = await performIO(query);
    if (res && Array.isArray(res.fields)) {
      const cc = [];
      res.fields.forEach((f, i) => {
        if (f.dataTypeID === OID_CHAR) { cc.push(i); f.dataTypeID = OID_TEXT; }
        else if (f.dataTypeID === OID_NAME) { f.dataTypeID = OID_TEXT; }
      });
      if (cc.length && query && typeof query === 'object') charCols.set(query, cc);
    }
    return res;
  };
  q.queryRaw = async (query) => {
    const out = await queryRaw(query); // original queryRaw calls this.performIO = the patched one
    const cc = query && typeof query === 'object' ? charCols.get(query) : undefined;
    if (cc) { for (const i of cc) out.columnTypes[i] = COLUMN_TYPE_CHARACTER; charCols.delete(query); }
    return out;
  };
  if (typeof q.startTransaction === 'function') {
    const start = q.startTransaction.bind(q);
    q.startTransaction = async (...a) => wrapQueryable(await start(...a));
  }
  return q;
}

function wrappedPrismaPg(connectionString, options) {
  // Pass a parsed config, NOT { connectionString }: adapter-pg's connectToShadowDb() builds
  // new Pool({ ...config, database: shadowName }), and node-postgres lets connectionString override
  // `database`, so with a connectionString the "shadow" database is the live one
  // (seen as P3006 "type ... already exists" from migrate diff --from-migrations).
  const { parse } = require('pg-connection-string');
  const cfg = parse(connectionString);
  if (cfg.port) cfg.port = Number(cfg.port);
  for (const k of Object.keys(cfg)) if (cfg[k] === undefined || cfg[k] === null) delete cfg[k];
  // allowExitOnIdle: without it the CLI lingers ~10 s after finishing (pg.Pool idleTimeoutMillis default)
  const factory = new PrismaPg({ ...cfg, allowExitOnIdle: true }, options);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => wrapQueryable(await connect());
  // adapter-pg's own connectToShadowDb() drops the shadow database BEFORE closing the shadow pool,
  // which fails with 'database "prisma_migrate_shadow_db_…" is being accessed by other users' and
  // leaves the database behind. Replace it: close the pool first, then DROP DATABASE … WITH (FORCE).
  factory.connectToShadowDb = async () => {
    const admin = await connect();
    const database = `prisma_migrate_shadow_db_${globalThis.crypto.randomUUID()}`;
    await admin.executeScript(`CREATE DATABASE "${database}"`);
    const shadow = wrapQueryable(
      await new PrismaPg({ ...cfg, database, allowExitOnIdle: true }, options).connect());
    const disposeShadow = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      try { await disposeShadow(); } finally {
        try { await admin.executeScript(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`); }
        finally { await admin.dispose(); }
      }
    };
    return shadow;
  };
  return factory;
}

module.exports = { wrappedPrismaPg, wrapQueryable };
