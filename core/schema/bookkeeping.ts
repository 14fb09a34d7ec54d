import type { Queryable } from './introspect.ts';

/**
 * The bookkeeping schema `santokit` inside each managed database: which releases were applied, with
 * what plan and statements. Its own structure evolves through numbered SQL migrations, applied in
 * order under an advisory lock inside the caller's transaction (so the first apply creates it
 * atomically with its DDL). They live here as strings rather than `.sql` files because the build
 * (tsc) does not copy non-TypeScript files.
 */

export const BOOKKEEPING_SCHEMA = 'santokit';

/** Serialises every schema change of Santokit on one database ('STKSCHMA' as a bigint). */
export const SCHEMA_LOCK_KEY = '6004507024174894401';

export interface BookkeepingMigration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

/** Append only: never edit a migration that has shipped, add the next number instead. */
export const BOOKKEEPING_MIGRATIONS: readonly BookkeepingMigration[] = [
  {
    id: 1,
    name: 'applied_releases',
    sql: `CREATE TABLE santokit.applied_releases (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  connection text NOT NULL,
  release_id text NOT NULL,
  ref text,
  plan_hash text NOT NULL,
  live_hash text NOT NULL,
  declared_hash text NOT NULL,
  statements jsonb NOT NULL,
  forced boolean NOT NULL,
  allowed_hazards jsonb NOT NULL,
  lock_timeout text NOT NULL,
  statement_timeout text NOT NULL,
  applied_by text NOT NULL DEFAULT current_user,
  applied_at timestamptz NOT NULL DEFAULT now()
)`,
  },
  {
    id: 2,
    name: 'applied_releases_release_idx',
    sql: 'CREATE INDEX applied_releases_release_idx ON santokit.applied_releases (release_id)',
  },
  {
    id: 3,
    name: 'release_at',
    // One row per connection: the release whose schema this database was last brought to, written
    // in the same transaction as that release's DDL (or alone when there was nothing to change).
    sql: `CREATE TABLE santokit.release_at (
  connection text PRIMARY KEY,
  release_id text NOT NULL,
  ref text,
  declared_hash text NOT NULL,
  mode text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
)`,
  },
];

/**
 * Brings the bookkeeping schema up to date. Call inside a transaction; takes the schema lock
 * (transaction-scoped) first. Returns the ids of the migrations it applied.
 */
export async function migrateBookkeeping(tx: Queryable): Promise<number[]> {
  await tx.unsafe('SELECT pg_catalog.pg_advisory_xact_lock($1::int8)', [SCHEMA_LOCK_KEY]);
  await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${BOOKKEEPING_SCHEMA}`);
  await tx.unsafe(`CREATE TABLE IF NOT EXISTS ${BOOKKEEPING_SCHEMA}.schema_migrations (
  id integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`);
  const rows = (await tx.unsafe(`SELECT id FROM ${BOOKKEEPING_SCHEMA}.schema_migrations`)) as unknown as { id: number }[];
  const done = new Set(rows.map((r) => r.id));
  const applied: number[] = [];
  for (const m of BOOKKEEPING_MIGRATIONS) {
    if (done.has(m.id)) continue;
    await tx.unsafe(m.sql);
    await tx.unsafe(`INSERT INTO ${BOOKKEEPING_SCHEMA}.schema_migrations (id, name) VALUES ($1, $2)`, [m.id, m.name]);
    applied.push(m.id);
  }
  return applied;
}

export interface AppliedRelease {
  readonly connection: string;
  readonly releaseId: string;
  readonly ref: string | null;
  readonly planHash: string;
  readonly liveHash: string;
  readonly declaredHash: string;
  readonly statements: readonly string[];
  readonly forced: boolean;
  readonly allowedHazards: readonly string[];
  readonly lockTimeout: string;
  readonly statementTimeout: string;
  readonly appliedAt: Date;
}

interface AppliedRow {
  connection: string;
  release_id: string;
  ref: string | null;
  plan_hash: string;
  live_hash: string;
  declared_hash: string;
  statements: string[];
  forced: boolean;
  allowed_hazards: string[];
  lock_timeout: string;
  statement_timeout: string;
  applied_at: Date;
}

/** The releases applied to this database, oldest first; empty when none ever was. */
export async function listAppliedReleases(sql: Queryable): Promise<AppliedRelease[]> {
  const [exists] = (await sql.unsafe(`SELECT pg_catalog.to_regclass('${BOOKKEEPING_SCHEMA}.applied_releases') IS NOT NULL AS present`)) as unknown as { present: boolean }[];
  if (!exists?.present) return [];
  const rows = (await sql.unsafe(`SELECT * FROM ${BOOKKEEPING_SCHEMA}.applied_releases ORDER BY id`)) as unknown as AppliedRow[];
  return rows.map((r) => ({
    connection: r.connection,
    releaseId: r.release_id,
    ref: r.ref,
    planHash: r.plan_hash,
    liveHash: r.live_hash,
    declaredHash: r.declared_hash,
    statements: r.statements,
    forced: r.forced,
    allowedHazards: r.allowed_hazards,
    lockTimeout: r.lock_timeout,
    statementTimeout: r.statement_timeout,
    appliedAt: r.applied_at,
  }));
}

/** Which release a connection's database is at: the last release whose schema it was brought to. */
export interface ReleaseAt {
  readonly connection: string;
  readonly releaseId: string;
  readonly ref: string | null;
  readonly declaredHash: string;
  /** how it got there: `transactional`, `two-phase` or `online` */
  readonly mode: string;
  readonly at: Date;
}

/**
 * Records (upserts) the release a connection is at. Call inside the transaction that brought the
 * database there, after `migrateBookkeeping`, so the record commits with the DDL or not at all.
 */
export async function recordReleaseAt(tx: Queryable, at: Omit<ReleaseAt, 'at'>): Promise<void> {
  await tx.unsafe(
    `INSERT INTO ${BOOKKEEPING_SCHEMA}.release_at (connection, release_id, ref, declared_hash, mode) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (connection) DO UPDATE SET release_id = EXCLUDED.release_id, ref = EXCLUDED.ref, declared_hash = EXCLUDED.declared_hash, mode = EXCLUDED.mode, at = now()`,
    [at.connection, at.releaseId, at.ref, at.declaredHash, at.mode],
  );
}

/**
 * The release a connection's database is at; null when no release was ever recorded. A database
 * whose bookkeeping predates `release_at` answers with its last applied release.
 */
export async function readReleaseAt(sql: Queryable, connection: string): Promise<ReleaseAt | null> {
  const [present] = (await sql.unsafe(
    `SELECT pg_catalog.to_regclass('${BOOKKEEPING_SCHEMA}.release_at') IS NOT NULL AS at, pg_catalog.to_regclass('${BOOKKEEPING_SCHEMA}.applied_releases') IS NOT NULL AS applied`,
  )) as unknown as { at: boolean; applied: boolean }[];
  if (present?.at) {
    const rows = (await sql.unsafe(`SELECT connection, release_id, ref, declared_hash, mode, at FROM ${BOOKKEEPING_SCHEMA}.release_at WHERE connection = $1`, [connection])) as unknown as {
      connection: string;
      release_id: string;
      ref: string | null;
      declared_hash: string;
      mode: string;
      at: Date;
    }[];
    const r = rows[0];
    if (r) return { connection: r.connection, releaseId: r.release_id, ref: r.ref, declaredHash: r.declared_hash, mode: r.mode, at: r.at };
  }
  if (!present?.applied) return null;
  const rows = (await sql.unsafe(`SELECT connection, release_id, ref, declared_hash, applied_at FROM ${BOOKKEEPING_SCHEMA}.applied_releases WHERE connection = $1 ORDER BY id DESC LIMIT 1`, [connection])) as unknown as {
    connection: string;
    release_id: string;
    ref: string | null;
    declared_hash: string;
    applied_at: Date;
  }[];
  const r = rows[0];
  return r ? { connection: r.connection, releaseId: r.release_id, ref: r.ref, declaredHash: r.declared_hash, mode: 'transactional', at: r.applied_at } : null;
}
