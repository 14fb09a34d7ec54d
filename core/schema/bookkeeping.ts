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
