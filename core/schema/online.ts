import type postgres from 'postgres';
import { UnavailableError, ValidationError } from '../errors.ts';
import { BOOKKEEPING_SCHEMA, migrateBookkeeping, recordReleaseAt, SCHEMA_LOCK_KEY } from './bookkeeping.ts';
import type { Change } from './changes.ts';
import { DestructiveChangeError, PlanStaleError } from './errors.ts';
import type { HazardKind } from './hazards.ts';
import { introspectSchema, type Queryable } from './introspect.ts';
import { hashSchema } from './ir.ts';
import { qualifiedTable, quoteIdent, TABLE_SCHEMA, boundedName } from './names.ts';
import { mapDatabaseError } from './pg-errors.ts';
import { blockedSteps, type SchemaPlan } from './plan.ts';

/**
 * Online mode: how a plan runs against a busy database. Nothing holds a lock longer than one
 * statement: indexes are built and dropped CONCURRENTLY outside any transaction, unique and primary
 * keys are attached to such an index, foreign keys and NOT NULL are added NOT VALID and validated
 * separately (validation takes SHARE UPDATE EXCLUSIVE, which lets reads and writes through), and
 * every other step commits on its own. Each statement gets its own lock_timeout and, when it cannot
 * get its lock in time, bounded retries with backoff; each step gets a statement timeout.
 *
 * The price: an online apply is not atomic. A failure leaves the steps before it applied; the next
 * run plans from what is there and finishes. An interrupted CONCURRENTLY build leaves an INVALID
 * index behind: `dropInvalidIndexes` finds and removes those on the managed tables before planning,
 * so the next plan builds them again.
 *
 * This module also holds the lock estimate of the transactional mode: the number of locks one
 * transaction needs, compared before any DDL with the server's lock table.
 */

export type ApplyMode = 'transactional' | 'two-phase' | 'online';
export const APPLY_MODES: readonly ApplyMode[] = ['transactional', 'two-phase', 'online'];

/** One statement of an online schedule. */
export interface OnlineUnit {
  /** 1-based number of the plan step it belongs to */
  readonly step: number;
  readonly sql: string;
  /** runs outside any transaction (CONCURRENTLY, VALIDATE); otherwise in its own short transaction */
  readonly outside: boolean;
  /** what it locks and for how long, in this mode */
  readonly locks: string;
  /** for a concurrent index build: the index an interrupted earlier build may have left INVALID */
  readonly rebuildsIndex?: string;
}

const brief = (t: string, mode = 'ACCESS EXCLUSIVE'): string => `${mode} on ${t} for one short statement (lock_timeout, retried)`;

/** The statements one plan step becomes in online mode. */
export function onlineUnits(change: Change, sql: string, step: number, newTables: ReadonlySet<string>): OnlineUnit[] {
  const t = change.table;
  const table = qualifiedTable(t);
  const alter = `ALTER TABLE ${table}`;
  // A table this plan creates is invisible to others until its statement commits, and empty after.
  if (newTables.has(t) && change.kind !== 'add_foreign_key') return [{ step, sql, outside: false, locks: `${t} is new and empty: nothing waits on it` }];
  switch (change.kind) {
    case 'create_index': {
      const i = change.index;
      return [{
        step,
        sql: `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${quoteIdent(i.name)} ON ${table} (${i.columns.map(quoteIdent).join(', ')})`,
        outside: true,
        locks: `SHARE UPDATE EXCLUSIVE on ${t} while the index builds: reads and writes continue`,
        rebuildsIndex: i.name,
      }];
    }
    case 'drop_index':
      return [{ step, sql: `DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(TABLE_SCHEMA)}.${quoteIdent(change.name)}`, outside: true, locks: `waits for transactions using ${t} to finish; reads and writes continue` }];
    case 'add_unique':
    case 'add_primary_key': {
      const c = change.constraint;
      const kind = change.kind === 'add_unique' ? 'UNIQUE' : 'PRIMARY KEY';
      return [
        {
          step,
          sql: `CREATE UNIQUE INDEX CONCURRENTLY ${quoteIdent(c.name)} ON ${table} (${c.columns.map(quoteIdent).join(', ')})`,
          outside: true,
          locks: `SHARE UPDATE EXCLUSIVE on ${t} while the index builds: reads and writes continue`,
          rebuildsIndex: c.name,
        },
        { step, sql: `${alter} ADD CONSTRAINT ${quoteIdent(c.name)} ${kind} USING INDEX ${quoteIdent(c.name)}`, outside: false, locks: brief(t) },
      ];
    }
    case 'add_foreign_key': {
      const fk = change.foreignKey;
      if (newTables.has(t) && newTables.has(fk.refTable)) return [{ step, sql, outside: false, locks: 'both tables are new: nothing waits on them' }];
      return [
        { step, sql: `${sql} NOT VALID`, outside: false, locks: brief(`${t} and ${fk.refTable}`, 'SHARE ROW EXCLUSIVE') },
        { step, sql: `${alter} VALIDATE CONSTRAINT ${quoteIdent(fk.name)}`, outside: true, locks: `SHARE UPDATE EXCLUSIVE on ${t} and ROW SHARE on ${fk.refTable} while rows are checked: reads and writes continue` },
      ];
    }
    case 'set_not_null': {
      const check = boundedName([t, change.column], 'not_null');
      const col = quoteIdent(change.column);
      return [
        { step, sql: `${alter} ADD CONSTRAINT ${quoteIdent(check)} CHECK (${col} IS NOT NULL) NOT VALID`, outside: false, locks: brief(t) },
        { step, sql: `${alter} VALIDATE CONSTRAINT ${quoteIdent(check)}`, outside: true, locks: `SHARE UPDATE EXCLUSIVE on ${t} while rows are checked: reads and writes continue` },
        // With a valid CHECK (col IS NOT NULL), SET NOT NULL does not scan the table.
        { step, sql: `${alter} ALTER COLUMN ${col} SET NOT NULL, DROP CONSTRAINT ${quoteIdent(check)}`, outside: false, locks: brief(t) },
      ];
    }
    default:
      return [{ step, sql, outside: false, locks: brief(t) }];
  }
}

/** The whole online schedule of a plan, in plan order. */
export function onlineSchedule(plan: SchemaPlan): OnlineUnit[] {
  const newTables = new Set(plan.steps.filter((s) => s.change.kind === 'create_table').map((s) => s.change.table));
  return plan.steps.flatMap((s, i) => onlineUnits(s.change, s.sql, i + 1, newTables));
}

/** Text appended to a rendered plan: the mode, and in online mode which statements run outside the transaction. */
export function renderMode(plan: SchemaPlan, mode: ApplyMode): string {
  if (plan.steps.length === 0) return '';
  const lines: string[] = [];
  if (mode !== 'online') {
    lines.push(`mode: ${mode} — every step in one transaction${mode === 'two-phase' ? ', committed with the other connections by two-phase commit' : ''}; each lock is held until it commits; about ${estimateLocks(plan)} locks`);
  } else {
    const units = onlineSchedule(plan);
    lines.push(`mode: online — ${units.length} statement(s), ${units.filter((u) => u.outside).length} outside any transaction; no lock is held past its own statement`);
    for (const u of units) lines.push(`  ${u.step}. ${u.outside ? 'outside the transaction' : 'own transaction'}: ${u.sql.split('\n')[0]}${u.sql.includes('\n') ? ' …' : ''}\n     locks: ${u.locks}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Which step of an apply failed, for status; set on the error an apply throws. */
const FAILED_STEP = Symbol('santokit.failedStep');

/** What the apply was doing when it failed (`step 2 (add unique constraint …)`), if the error came from an apply. */
export function failedStepOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as { [FAILED_STEP]?: string })[FAILED_STEP] : undefined;
}

export function withFailedStep<E extends object>(err: E, step: string): E {
  Object.defineProperty(err, FAILED_STEP, { value: step, enumerable: false, configurable: true });
  return err;
}

// --- lock estimate ------------------------------------------------------------------------------

/** Column types stored inline (no TOAST table). Anything else may get a TOAST table and its index. */
const FIXED_WIDTH = new Set(['smallint', 'integer', 'bigint', 'boolean', 'real', 'double precision', 'date', 'timestamp with time zone', 'timestamp without time zone', 'timestamptz', 'timestamp', 'uuid', 'time without time zone']);

/**
 * The locks one transaction takes to run a plan: every relation it creates or alters stays locked
 * until commit, some in two modes. Measured on Postgres 15 (pg_locks of the applying backend): a new
 * table takes 3 (the table twice — ACCESS EXCLUSIVE and SHARE for its index builds — and its row
 * type), each primary key or unique index 1, a TOAST table and its index 2, an identity sequence up
 * to 4. Plus a margin for the bookkeeping. On the high side; `requireLockCapacity` compares it.
 */
export function estimateLocks(plan: SchemaPlan): number {
  let n = 16;
  for (const { change } of plan.steps) {
    switch (change.kind) {
      case 'create_table': {
        n += 3;
        if (change.primaryKey) n += 1;
        n += change.uniques.length;
        n += 4 * change.columns.filter((c) => c.identity !== null).length;
        if (change.columns.some((c) => !FIXED_WIDTH.has(c.type))) n += 2;
        break;
      }
      case 'drop_table':
        n += 8;
        break;
      case 'add_column':
        n += change.column.identity !== null ? 6 : 2;
        break;
      case 'create_index':
      case 'add_unique':
      case 'add_primary_key':
      case 'add_foreign_key':
      case 'alter_column_type':
        n += 4;
        break;
      default:
        n += 2;
    }
  }
  return n;
}

export interface LockCapacity {
  readonly maxLocksPerTransaction: number;
  readonly maxConnections: number;
  readonly maxPreparedTransactions: number;
  /** the server's shared lock table: max_locks_per_transaction × (max_connections + max_prepared_transactions) */
  readonly slots: number;
}

export async function lockCapacity(sql: Queryable): Promise<LockCapacity> {
  const [row] = (await sql.unsafe(
    "SELECT pg_catalog.current_setting('max_locks_per_transaction')::int AS l, pg_catalog.current_setting('max_connections')::int AS c, pg_catalog.current_setting('max_prepared_transactions')::int AS p",
  )) as unknown as { l: number; c: number; p: number }[];
  const { l, c, p } = row!;
  return { maxLocksPerTransaction: l, maxConnections: c, maxPreparedTransactions: p, slots: l * (c + p) };
}

/** The refusal of a plan too big for one transaction on this server (pure, for tests and messages). */
export function lockRefusal(plan: SchemaPlan, capacity: LockCapacity): UnavailableError | undefined {
  const needed = estimateLocks(plan);
  if (needed <= capacity.slots) return undefined;
  const perTx = Math.ceil(needed / (capacity.maxConnections + capacity.maxPreparedTransactions));
  return new UnavailableError(
    `connection ${plan.connection}: the plan needs about ${needed} locks in one transaction, but the server's lock table holds ${capacity.slots} ` +
      `(max_locks_per_transaction ${capacity.maxLocksPerTransaction} × (max_connections ${capacity.maxConnections} + max_prepared_transactions ${capacity.maxPreparedTransactions})); nothing was applied`,
    {
      reason: 'InsufficientLocks',
      retryable: false,
      hint: `apply it in online mode (stk apply --mode online, or spec.applyMode: online), split it into smaller releases, or raise max_locks_per_transaction to at least ${perTx}`,
    },
  );
}

/** Refuses, before any DDL, a plan whose transaction would run out of the server's lock table. */
export async function requireLockCapacity(sql: Queryable, plan: SchemaPlan): Promise<void> {
  if (plan.steps.length === 0) return;
  const refusal = lockRefusal(plan, await lockCapacity(sql));
  if (refusal) throw refusal;
}

// --- online apply -------------------------------------------------------------------------------

export interface OnlineApplyOptions {
  readonly releaseId: string;
  readonly ref?: string | null;
  readonly force?: boolean;
  readonly allowHazards?: readonly HazardKind[];
  /** how long one statement may wait for its lock (default 2 s) */
  readonly lockTimeoutMs?: number;
  /** how long one statement may run (default 30 min: index builds on big tables) */
  readonly statementTimeoutMs?: number;
  /** attempts per statement when its lock is not granted in time (default 5) */
  readonly lockRetries?: number;
  /** first backoff between attempts, doubled each time, with jitter (default 200 ms) */
  readonly retryBackoffMs?: number;
  /** called before each statement (progress; tests use it to interrupt a run at a known point) */
  readonly onStatement?: (unit: OnlineUnit, index: number) => void | Promise<void>;
}

export interface OnlineApplyResult {
  readonly connection: string;
  readonly releaseId: string;
  readonly planHash: string;
  readonly statements: readonly string[];
  /** statements that needed more than one attempt */
  readonly retried: number;
  /** INVALID indexes of an interrupted earlier build, dropped before their build ran again */
  readonly rebuiltIndexes: readonly string[];
}

const DEFAULT_ONLINE_LOCK_TIMEOUT_MS = 2_000;
const DEFAULT_ONLINE_STATEMENT_TIMEOUT_MS = 1_800_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 0) throw new ValidationError(`${name} must be a whole number ≥ 0 (got ${String(value)})`, [{ path: name, message: 'must be a non-negative integer' }]);
  return v;
}

/** INVALID indexes on the given tables (left by an interrupted CREATE INDEX CONCURRENTLY). */
export async function findInvalidIndexes(sql: Queryable, tables: readonly string[]): Promise<{ table: string; index: string }[]> {
  if (tables.length === 0) return [];
  return (await sql.unsafe(
    `SELECT t.relname AS "table", i.relname AS "index"
       FROM pg_catalog.pg_index x
       JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
       JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1 AND NOT x.indisvalid AND t.relname = ANY($2::text[])
      ORDER BY 1, 2`,
    [TABLE_SCHEMA, tables as string[]],
  )) as unknown as { table: string; index: string }[];
}

/** Drops the INVALID indexes on the managed tables, concurrently; returns their names. Run before planning. */
export async function dropInvalidIndexes(sql: postgres.Sql, tables: readonly string[]): Promise<string[]> {
  const found = await findInvalidIndexes(sql, tables);
  for (const f of found) await sql.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(TABLE_SCHEMA)}.${quoteIdent(f.index)}`);
  return found.map((f) => f.index);
}

/**
 * Runs a plan online (see module doc). Holds the schema advisory lock for the whole run on one
 * reserved session, so a concurrent apply of the same database waits instead of interleaving.
 */
export async function applyPlanOnline(sql: postgres.Sql, plan: SchemaPlan, options: OnlineApplyOptions): Promise<OnlineApplyResult> {
  const lockTimeout = positive('lockTimeoutMs', options.lockTimeoutMs, DEFAULT_ONLINE_LOCK_TIMEOUT_MS);
  const statementTimeout = positive('statementTimeoutMs', options.statementTimeoutMs, DEFAULT_ONLINE_STATEMENT_TIMEOUT_MS);
  const attempts = Math.max(1, positive('lockRetries', options.lockRetries, 5));
  const backoff = positive('retryBackoffMs', options.retryBackoffMs, 200);
  const blocked = blockedSteps(plan, options);
  if (blocked.length > 0) throw new DestructiveChangeError(plan.connection, blocked);

  const units = onlineSchedule(plan);
  const conn = await sql.reserve();
  let doing = 'taking the schema lock';
  let retried = 0;
  const rebuilt: string[] = [];
  try {
    // Polled, not waited for: a session waiting on the lock would be a transaction that the other
    // apply's CREATE INDEX CONCURRENTLY waits for in turn (a deadlock).
    for (const deadline = Date.now() + statementTimeout; ; ) {
      const [got] = (await conn.unsafe('SELECT pg_catalog.pg_try_advisory_lock($1::int8) AS ok', [SCHEMA_LOCK_KEY])) as unknown as { ok: boolean }[];
      if (got?.ok) break;
      if (Date.now() > deadline) throw new UnavailableError(`connection ${plan.connection}: another apply held the schema lock for longer than ${statementTimeout} ms; nothing was applied`, { reason: 'LockTimeout' });
      await sleep(100 + Math.round(Math.random() * 100));
    }
    doing = 'migrating the bookkeeping schema';
    await conn.unsafe('BEGIN');
    await migrateBookkeeping(conn);
    await conn.unsafe('COMMIT');
    doing = 'reading the live schema';
    const live = await introspectSchema(conn, { managedTables: plan.managedTables });
    const liveHash = hashSchema(live.ir);
    if (liveHash !== plan.liveHash) throw new PlanStaleError(plan.connection, plan.liveHash, liveHash);

    for (const [i, unit] of units.entries()) {
      doing = `step ${unit.step} (${plan.steps[unit.step - 1]!.description})`;
      await options.onStatement?.(unit, i);
      for (let attempt = 1; ; attempt++) {
        try {
          await conn.unsafe("SELECT pg_catalog.set_config('lock_timeout', $1, false), pg_catalog.set_config('statement_timeout', $2, false)", [`${lockTimeout}ms`, `${statementTimeout}ms`]);
          if (unit.rebuildsIndex) {
            const stale = (await findInvalidIndexes(conn, [plan.steps[unit.step - 1]!.change.table])).filter((x) => x.index === unit.rebuildsIndex);
            for (const s of stale) {
              await conn.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(TABLE_SCHEMA)}.${quoteIdent(s.index)}`);
              rebuilt.push(s.index);
            }
          }
          if (unit.outside) {
            await conn.unsafe(unit.sql);
          } else {
            await conn.unsafe('BEGIN');
            try {
              await conn.unsafe(unit.sql);
              await conn.unsafe('COMMIT');
            } catch (err) {
              await conn.unsafe('ROLLBACK').catch(() => {});
              throw err;
            }
          }
          break;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== '55P03' || attempt >= attempts) throw err;
          retried++;
          const wait = backoff * 2 ** (attempt - 1);
          await sleep(Math.round(wait * (0.5 + Math.random())));
        }
      }
    }

    doing = 'recording the release';
    await conn.unsafe("SELECT pg_catalog.set_config('lock_timeout', $1, false), pg_catalog.set_config('statement_timeout', $2, false)", [`${lockTimeout}ms`, `${statementTimeout}ms`]);
    await conn.unsafe('BEGIN');
    {
      await conn.unsafe(
        `INSERT INTO ${BOOKKEEPING_SCHEMA}.applied_releases
           (connection, release_id, ref, plan_hash, live_hash, declared_hash, statements, forced, allowed_hazards, lock_timeout, statement_timeout)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9::text::jsonb, $10, $11)`,
        [plan.connection, options.releaseId, options.ref ?? null, plan.hash, plan.liveHash, plan.declaredHash, JSON.stringify(units.map((u) => u.sql)), options.force === true, JSON.stringify(options.allowHazards ?? plan.allowedHazards), `${lockTimeout}ms`, `${statementTimeout}ms`],
      );
    }
    await recordReleaseAt(conn, { connection: plan.connection, releaseId: options.releaseId, ref: options.ref ?? null, declaredHash: plan.declaredHash, mode: 'online' });
    await conn.unsafe('COMMIT');
    return { connection: plan.connection, releaseId: options.releaseId, planHash: plan.hash, statements: units.map((u) => u.sql), retried, rebuiltIndexes: rebuilt };
  } catch (err) {
    await conn.unsafe('ROLLBACK').catch(() => {});
    throw withFailedStep(mapDatabaseError(err, `connection ${plan.connection}: ${doing} failed (online mode: the steps before it stay applied; the next apply finishes the rest)`), doing);
  } finally {
    await conn.unsafe('SELECT pg_catalog.pg_advisory_unlock($1::int8)', [SCHEMA_LOCK_KEY]).catch(() => {});
    await conn.unsafe('RESET lock_timeout').catch(() => {});
    await conn.unsafe('RESET statement_timeout').catch(() => {});
    conn.release();
  }
}
