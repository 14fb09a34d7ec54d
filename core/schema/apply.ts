import type postgres from 'postgres';
import { ValidationError } from '../errors.ts';
import { BOOKKEEPING_SCHEMA, migrateBookkeeping, recordReleaseAt } from './bookkeeping.ts';
import { DestructiveChangeError, PlanStaleError } from './errors.ts';
import type { HazardKind } from './hazards.ts';
import { introspectSchema } from './introspect.ts';
import { hashSchema } from './ir.ts';
import { mapDatabaseError } from './pg-errors.ts';
import { blockedSteps, type SchemaPlan } from './plan.ts';
import { requireLockCapacity, withFailedStep } from './online.ts';

/**
 * Applies a plan to its connection's database in one transaction: every step or none. Before it,
 * the locks the transaction will need are estimated against the server's lock table (a plan too
 * big for it is refused before any DDL). Inside it, in order: local lock and statement timeouts,
 * the schema advisory lock, bookkeeping migrations, a fresh read of the managed tables (a plan made
 * against another state is refused), the steps, the record of the release and of the release the
 * connection is now at, all committed together — or, with `prepareAs`, prepared for a two-phase
 * commit that the caller finishes with COMMIT PREPARED.
 */

export const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 300_000;

export interface ApplyOptions {
  /** the Release this plan belongs to, recorded in the bookkeeping */
  readonly releaseId: string;
  /** the Git ref of that release */
  readonly ref?: string | null;
  /** apply destructive steps whatever their hazards */
  readonly force?: boolean;
  /** destructive hazards accepted by name; default: those the plan was made with */
  readonly allowHazards?: readonly HazardKind[];
  /** how long any statement may wait for a lock before the apply fails (SET LOCAL lock_timeout) */
  readonly lockTimeoutMs?: number;
  /** how long any statement may run (SET LOCAL statement_timeout) */
  readonly statementTimeoutMs?: number;
  /** two-phase commit: end with PREPARE TRANSACTION under this global id instead of COMMIT */
  readonly prepareAs?: string;
  /** skip the lock estimate (the caller checked it) */
  readonly skipLockEstimate?: boolean;
  /** add a row to applied_releases (default true); false records only which release the connection is at */
  readonly recordApplied?: boolean;
}

/** A global transaction id that names the release and connection (two-phase commit). */
export function preparedTransactionId(releaseId: string, connection: string): string {
  return `santokit.${releaseId}.${connection}`;
}

/**
 * Finishes a two-phase commit (COMMIT PREPARED), or abandons it (ROLLBACK PREPARED). Idempotent:
 * a transaction already finished is not an error. Returns whether it was still prepared.
 */
export async function finishPrepared(sql: postgres.Sql, gid: string, commit: boolean): Promise<boolean> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_catalog.pg_prepared_xacts WHERE gid = ${gid} AND database = pg_catalog.current_database()`;
  if (!row || row.n === 0) return false;
  await sql.unsafe(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED '${gid.replaceAll("'", "''")}'`);
  return true;
}

/** The prepared (in-doubt) transactions of Santokit in this database: gid and the release and connection it names. */
export async function listPrepared(sql: postgres.Sql): Promise<{ gid: string; releaseId: string; connection: string }[]> {
  const rows = await sql<{ gid: string }[]>`SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE database = pg_catalog.current_database() AND gid LIKE 'santokit.%' ORDER BY gid`;
  return rows.flatMap(({ gid }) => {
    const m = /^santokit\.(rel-[0-9a-z]+)\.(.+)$/.exec(gid);
    return m ? [{ gid, releaseId: m[1]!, connection: m[2]! }] : [];
  });
}

export interface ApplyResult {
  readonly connection: string;
  readonly releaseId: string;
  readonly planHash: string;
  readonly statements: readonly string[];
  /** bookkeeping migrations this apply ran (usually none) */
  readonly bookkeepingMigrations: readonly number[];
}

function timeout(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new ValidationError(`${name} must be a positive whole number of milliseconds (got ${String(value)})`, [{ path: name, message: 'must be a positive integer' }]);
  return v;
}

/** Applies a plan (see module doc); throws DestructiveChangeError, PlanStaleError or a mapped database error. */
export async function applyPlan(sql: postgres.Sql, plan: SchemaPlan, options: ApplyOptions): Promise<ApplyResult> {
  const lockTimeout = timeout('lockTimeoutMs', options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS);
  const statementTimeout = timeout('statementTimeoutMs', options.statementTimeoutMs, DEFAULT_STATEMENT_TIMEOUT_MS);
  const blocked = blockedSteps(plan, options);
  if (blocked.length > 0) throw new DestructiveChangeError(plan.connection, blocked);

  const statements = plan.steps.map((s) => s.sql);
  let doing = 'estimating the locks';
  try {
    if (!options.skipLockEstimate) await requireLockCapacity(sql, plan);
    doing = 'starting the transaction';
    return await sql.begin(async (tx) => {
      doing = 'setting timeouts';
      await tx.unsafe("SELECT pg_catalog.set_config('lock_timeout', $1, true), pg_catalog.set_config('statement_timeout', $2, true)", [`${lockTimeout}ms`, `${statementTimeout}ms`]);
      doing = 'migrating the bookkeeping schema';
      const bookkeepingMigrations = await migrateBookkeeping(tx);

      doing = 'reading the live schema';
      const live = await introspectSchema(tx, { managedTables: plan.managedTables });
      const liveHash = hashSchema(live.ir);
      if (liveHash !== plan.liveHash) throw new PlanStaleError(plan.connection, plan.liveHash, liveHash);

      for (const [i, step] of plan.steps.entries()) {
        doing = `step ${i + 1} (${step.description})`;
        await tx.unsafe(step.sql);
      }

      doing = 'recording the release';
      if (options.recordApplied !== false) await tx.unsafe(
        `INSERT INTO ${BOOKKEEPING_SCHEMA}.applied_releases
           (connection, release_id, ref, plan_hash, live_hash, declared_hash, statements, forced, allowed_hazards, lock_timeout, statement_timeout)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9::text::jsonb,
                 pg_catalog.current_setting('lock_timeout'), pg_catalog.current_setting('statement_timeout'))`,
        [
          plan.connection,
          options.releaseId,
          options.ref ?? null,
          plan.hash,
          plan.liveHash,
          plan.declaredHash,
          JSON.stringify(statements),
          options.force === true,
          JSON.stringify(options.allowHazards ?? plan.allowedHazards),
        ],
      );
      await recordReleaseAt(tx, { connection: plan.connection, releaseId: options.releaseId, ref: options.ref ?? null, declaredHash: plan.declaredHash, mode: options.prepareAs ? 'two-phase' : 'transactional' });
      if (options.prepareAs) {
        doing = 'preparing the transaction';
        await tx.prepare(options.prepareAs);
      }
      return { connection: plan.connection, releaseId: options.releaseId, planHash: plan.hash, statements, bookkeepingMigrations };
    });
  } catch (err) {
    throw withFailedStep(mapDatabaseError(err, `connection ${plan.connection}: ${doing} failed, nothing was applied`), doing);
  }
}
