import { performance } from 'node:perf_hooks';
import { InternalError, isSantokitError } from '../../../core/errors.ts';
import {
  DestructiveChangeError,
  REFUSING_HAZARDS,
  applyPlan,
  checkDrift,
  declareSchema,
  parseSchemaFiles,
  planLiveSchemaChanges,
  schemaOf,
  type DriftDifference,
  type SchemaIR,
  type SchemaPlan,
} from '../../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { dumpSchema } from '../helpers.ts';
import type { KeptTable, Pair } from './generator.ts';

/**
 * Runs one pair through the engine's public API, the way the operator does (plan against the
 * live database with the previous release's IR, apply with force), and checks the oracle:
 *   (a) `pg_dump --schema-only` of the migrated database equals a fresh build of v2 plus the same
 *       hand-made objects (those that still make sense after v2);
 *   (b) planning v2 again gives no steps;
 *   (c) drift against v2 reports nothing but the hand-made objects (as extra / unmanaged).
 * A plan refused at plan time with a reason is a legal outcome. Everything else — an invalid
 * generated declaration, a failing apply, an internal error, a non-empty re-plan, drift, a dump
 * mismatch — is an `OracleFailure` that names the stage and what Postgres said.
 */

/** Names of everything a DBA adds by hand start with this; drift may report them, nothing else. */
export const HANDMADE_PREFIX = 'hand_';

export type Outcome = { readonly kind: 'applied'; readonly steps: number; readonly destructive: number } | { readonly kind: 'refused'; readonly reason: string };

export type Stage = 'declare-v1' | 'declare-v2' | 'apply-v1' | 'rows' | 'handmade' | 'plan-v2' | 'apply-v2' | 'fresh-v2' | 'fresh-handmade' | 'oracle';

export class OracleFailure extends Error {
  readonly stage: Stage;
  /** SQLSTATE when Postgres refused something */
  readonly sqlState: string | undefined;
  /** what Postgres said (its own message), or the oracle's finding */
  readonly detail: string;
  readonly plan: string | undefined;

  constructor(stage: Stage, detail: string, sqlState?: string, plan?: string) {
    super(`oracle failure at ${stage}${sqlState ? ` (SQLSTATE ${sqlState})` : ''}: ${detail}`);
    this.name = 'OracleFailure';
    this.stage = stage;
    this.detail = detail;
    this.sqlState = sqlState;
    this.plan = plan;
  }
}

/** The Postgres error at the root of a (mapped) error: its SQLSTATE and its own message. */
export function postgresCause(err: unknown): { code: string | undefined; message: string } {
  let e: unknown = err;
  const messages: string[] = [];
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    messages.push(e.message);
    const code = (e as { code?: unknown }).code;
    if (e.name === 'PostgresError' && typeof code === 'string') return { code, message: e.message };
    e = (e as { cause?: unknown }).cause;
  }
  return { code: undefined, message: messages.join(' ← ') || String(err) };
}

/**
 * How the dumps are compared:
 * - `each`: `pg_dump` of both databases after every pair (what a named case does; ~0.2 s per dump
 *   on a busy machine, mostly the new connection);
 * - `batch`: after every pair an in-process catalog snapshot is compared at once (so fast-check can
 *   shrink a failure), and both schemas are kept aside (schema `public` renamed to `oracle_<n>`);
 *   `flushDumps` then runs one `pg_dump` per database for many pairs and compares them pair by pair.
 */
export type DumpMode = 'each' | 'batch';

/** A pair whose pg_dump comparison failed in batch mode. */
export interface DumpMismatch {
  readonly label: string;
  readonly diff: string;
}

/** Two databases reused by every pair (reset in between): creating databases per pair costs too much. */
export interface OracleDatabases {
  readonly migrated: TestDatabase;
  readonly fresh: TestDatabase;
  readonly mode: DumpMode;
  /** batch mode: pairs kept aside for the next flush, by schema name */
  readonly kept: Map<string, string>;
  /** batch mode: dumps and compares the pairs kept aside, then drops them */
  flushDumps(): Promise<DumpMismatch[]>;
  close(): Promise<void>;
}

/** Pairs kept aside before a flush (bounds the size of one dump). */
export const DUMP_BATCH = 40;

export async function openOracleDatabases(mode: DumpMode = 'each'): Promise<OracleDatabases> {
  const migrated = await createTestDatabase('oracle_migrated');
  const fresh = await createTestDatabase('oracle_fresh').catch(async (err: unknown) => {
    await migrated.drop();
    throw err;
  });
  const kept = new Map<string, string>();
  return {
    migrated,
    fresh,
    mode,
    kept,
    async flushDumps() {
      if (kept.size === 0) return [];
      const [a, b] = await Promise.all([dumpSchema(migrated.url), dumpSchema(fresh.url)]);
      const left = splitBySchema(a);
      const right = splitBySchema(b);
      const out: DumpMismatch[] = [];
      for (const [schema, label] of kept) {
        const x = normaliseDump(unqualify(left.get(schema) ?? '', schema));
        const y = normaliseDump(unqualify(right.get(schema) ?? '', schema));
        if (x === '' || x !== y) out.push({ label, diff: x === '' ? '  the migrated schema is missing from the dump' : lineDiff(x, y) });
      }
      const drop = [...kept.keys()].map((s) => `DROP SCHEMA IF EXISTS "${s}" CASCADE`).join('; ');
      await Promise.all([migrated.sql.unsafe(drop), fresh.sql.unsafe(drop)]);
      kept.clear();
      return out;
    },
    async close() {
      await Promise.all([migrated.drop(), fresh.drop()]);
    },
  };
}

/** pg_dump output → the text of each schema's objects (by the `Schema:` of each object's header). */
function splitBySchema(dump: string): Map<string, string> {
  const out = new Map<string, string[]>();
  for (const block of dump.split(/\n(?=--\n-- Name: )/)) {
    const m = /^--\n-- Name: [^;]*; Type: [^;]*; Schema: ([^;]+);/.exec(block);
    const schema = m?.[1];
    if (schema === undefined || schema === '-') continue;
    (out.get(schema) ?? out.set(schema, []).get(schema))?.push(block);
  }
  return new Map([...out].map(([k, v]) => [k, v.join('\n')]));
}

/** A kept-aside schema's dump read as if it were `public` again. */
function unqualify(text: string, schema: string): string {
  return text
    .replaceAll(`Schema: ${schema};`, 'Schema: public;')
    .replaceAll(`${schema}.`, 'public.')
    .replace(/^CREATE SCHEMA .*;$/m, '');
}

let keptCounter = 0;

/** Milliseconds spent per stage over all pairs (the soak run prints them). */
export const stageMillis = new Map<string, number>();

async function timed<T>(stage: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    stageMillis.set(stage, (stageMillis.get(stage) ?? 0) + performance.now() - started);
  }
}

/** One query: what pg_dump would show of schema public, as sorted lines (start of sequences aside). */
const SNAPSHOT_QUERY = `
SELECT line FROM (
  SELECT 'relation ' || c.relname || ' ' || c.relkind::text AS line
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public'
  UNION ALL
  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
         || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END
         || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
         || CASE WHEN a.attcollation <> ty.typcollation THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  UNION ALL
  SELECT 'constraint ' || c.relname || ' ' || con.conname || ' ' || pg_catalog.pg_get_constraintdef(con.oid)
         || CASE WHEN con.condeferrable THEN ' deferrable' ELSE '' END || CASE WHEN NOT con.convalidated THEN ' not valid' ELSE '' END
  FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public'
  UNION ALL
  SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid) || CASE WHEN NOT i.indisvalid THEN ' invalid' ELSE '' END
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public'
  UNION ALL
  SELECT 'sequence ' || c.relname || ' ' || pg_catalog.format_type(s.seqtypid, NULL) || ' increment ' || s.seqincrement
         || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
         || coalesce(' owned by ' || (SELECT oc.relname || '.' || oa.attname FROM pg_catalog.pg_depend dep
                                      JOIN pg_catalog.pg_class oc ON oc.oid = dep.refobjid
                                      JOIN pg_catalog.pg_attribute oa ON oa.attrelid = dep.refobjid AND oa.attnum = dep.refobjsubid
                                      WHERE dep.objid = c.oid AND dep.classid = 'pg_catalog.pg_class'::regclass AND dep.deptype IN ('a', 'i') LIMIT 1), '')
  FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public'
) AS x ORDER BY line COLLATE "C"`;

async function snapshot(db: TestDatabase): Promise<string> {
  const rows = (await db.sql.unsafe(SNAPSHOT_QUERY)) as unknown as { line: string }[];
  return rows.map((r) => r.line).join('\n');
}

/** Empties schema public (and with it every managed table); the bookkeeping schema stays. */
async function reset(db: TestDatabase): Promise<void> {
  await db.sql.unsafe('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
}

function declareText(text: string, stage: Stage): SchemaIR {
  try {
    return declareSchema(parseSchemaFiles([{ path: 'schema/app.yaml', text }])).main ?? schemaOf([]);
  } catch (err) {
    throw new OracleFailure(stage, `the generated declaration is not valid (a generator bug, or a rule the engine now enforces): ${(err as Error).message}`);
  }
}

const APPLY_LIMITS = { lockTimeoutMs: 5_000, statementTimeoutMs: 20_000 } as const;

let releaseCounter = 0;

/** Plans as the operator does: the live managed tables, the previous release's IR. */
async function plan(db: TestDatabase, declared: SchemaIR, previous: SchemaIR | null): Promise<SchemaPlan> {
  return planLiveSchemaChanges(db.sql, { declared, previous, connection: 'main' });
}

function planText(p: SchemaPlan): string {
  return p.steps.map((s, i) => `${i + 1}. ${s.description}${s.destructive ? ' [destructive]' : ''}\n   ${s.sql.replaceAll('\n', '\n   ')};`).join('\n');
}

async function build(db: TestDatabase, declared: SchemaIR, stage: Stage): Promise<void> {
  let p: SchemaPlan | undefined;
  try {
    await reset(db);
    p = await plan(db, declared, null);
    await applyPlan(db.sql, p, { releaseId: `oracle-${++releaseCounter}`, ...APPLY_LIMITS });
  } catch (err) {
    const cause = postgresCause(err);
    throw new OracleFailure(stage, cause.message, cause.code, p && planText(p));
  }
}

async function runAll(db: TestDatabase, statements: readonly string[], stage: Stage): Promise<void> {
  for (const statement of statements) {
    try {
      await db.sql.unsafe(statement);
    } catch (err) {
      const cause = postgresCause(err);
      throw new OracleFailure(stage, `${cause.message}\n  in: ${statement}`, cause.code);
    }
  }
}

/**
 * The dump in a form where column order does not count (Postgres appends added columns, a fresh
 * build follows the declaration) and neither does an identity sequence's start (a position in
 * the data, which the engine may set so ids continue after existing rows).
 */
export function normaliseDump(dump: string): string {
  const out: string[] = [];
  const lines = dump.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('--') || line.trim() === '' || line.startsWith('SET ') || line.startsWith('SELECT pg_catalog.set_config')) continue;
    if (/^CREATE TABLE .* \($/.test(line)) {
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length && lines[j] !== ');'; j++) body.push((lines[j] as string).replace(/,$/, ''));
      out.push(line, ...body.sort(), ');');
      i = j;
      continue;
    }
    out.push(line.replace(/START WITH \d+/, 'START WITH <n>'));
  }
  return out.join('\n');
}

/** Lines only in one of two texts (with multiplicity): a compact diff for failure messages. */
export function lineDiff(migrated: string, fresh: string): string {
  const count = (text: string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const l of text.split('\n')) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = count(migrated);
  const b = count(fresh);
  const out: string[] = [];
  for (const [l, n] of a) for (let k = b.get(l) ?? 0; k < n; k++) out.push(`  migrated only: ${l}`);
  for (const [l, n] of b) for (let k = a.get(l) ?? 0; k < n; k++) out.push(`  fresh only:    ${l}`);
  return out.join('\n');
}

/** Drift that the oracle accepts: hand-made objects reported as extra or unmanaged. */
export function acceptableDrift(d: DriftDifference): boolean {
  return (d.object ?? '').startsWith(HANDMADE_PREFIX) && /^(extra_|unmanaged)/.test(d.kind);
}

/**
 * The reasons of a plan refused at plan time: its steps that carry a refusing hazard
 * (`REFUSING_HAZARDS`, rendered `[refused]`), one line per hazard; undefined when none is refused.
 * A refusal without a reason is not a refusal but a failure.
 */
function refusalOf(p: SchemaPlan): string | undefined {
  const lines = p.steps.flatMap((step, i) =>
    step.hazards.filter((h) => REFUSING_HAZARDS.has(h.kind)).map((h) => {
      if (h.message.trim() === '') throw new OracleFailure('plan-v2', `step ${i + 1} (${step.description}) is refused (${h.kind}) without a reason`);
      return `step ${i + 1}, ${step.description}: ${h.kind} (${h.message})`;
    }),
  );
  return lines.length > 0 ? lines.join('\n') : undefined;
}

/**
 * A refused plan must leave the database as it was: applying it (forced, as the operator does)
 * throws `DestructiveChangeError` with reason `PlanRefused`, and the catalog is unchanged.
 * Any other outcome — the apply runs, or fails in another way — is a failure.
 */
async function assertRefusedApply(db: TestDatabase, planned: SchemaPlan, text: string): Promise<void> {
  const before = await snapshot(db);
  try {
    await applyPlan(db.sql, planned, { releaseId: `oracle-${++releaseCounter}`, force: true, ...APPLY_LIMITS });
  } catch (err) {
    if (!(err instanceof DestructiveChangeError) || err.reason !== 'PlanRefused') {
      const cause = postgresCause(err);
      throw new OracleFailure('apply-v2', `a refused plan failed otherwise than PlanRefused: ${cause.message}`, cause.code, text);
    }
    const after = await snapshot(db);
    if (after !== before) throw new OracleFailure('apply-v2', `a refused plan changed the schema:\n${lineDiff(after, before)}`, undefined, text);
    return;
  }
  throw new OracleFailure('apply-v2', 'a plan with refused steps was applied', undefined, text);
}

/** Runs one pair (see module doc). */
export async function runPair(pair: Pair, dbs: OracleDatabases, label = 'pair'): Promise<Outcome> {
  const v1 = declareText(pair.v1, 'declare-v1');
  let v2: SchemaIR;
  try {
    v2 = declareText(pair.v2, 'declare-v2');
  } catch (err) {
    const message = (err as Error).message;
    if (pair.reservedNames?.some((n) => message.includes(`"${n}"`))) return { kind: 'refused', reason: message };
    throw err;
  }
  const { migrated, fresh } = dbs;

  await timed('build v1', () => build(migrated, v1, 'apply-v1'));
  await timed('rows and hand-made', async () => {
    await runAll(migrated, pair.rows, 'rows');
    await runAll(migrated, pair.handmade, 'handmade');
  });
  const dataBefore = await timed('data fingerprints', () => fingerprints(migrated, pair.kept ?? [], 'before'));

  let planned: SchemaPlan;
  try {
    planned = await timed('plan v2', () => plan(migrated, v2, v1));
  } catch (err) {
    if (isSantokitError(err) && !(err instanceof InternalError) && err.message.trim() !== '') return { kind: 'refused', reason: err.message };
    const cause = postgresCause(err);
    throw new OracleFailure('plan-v2', cause.message, cause.code);
  }
  const text = planText(planned);
  const refused = refusalOf(planned);
  if (refused !== undefined) {
    await timed('refused apply', () => assertRefusedApply(migrated, planned, text));
    return { kind: 'refused', reason: refused };
  }
  try {
    await timed('apply v2', () => applyPlan(migrated.sql, planned, { releaseId: `oracle-${++releaseCounter}`, force: true, ...APPLY_LIMITS }));
  } catch (err) {
    const cause = postgresCause(err);
    throw new OracleFailure('apply-v2', cause.message, cause.code, text);
  }

  // The fresh build runs beside the checks of the migrated database.
  const freshDump = timed('fresh build and its dump', async () => {
    await build(fresh, v2, 'fresh-v2');
    await runAll(fresh, pair.handmadeAfter, 'fresh-handmade');
    return dbs.mode === 'each' ? dumpSchema(fresh.url) : snapshot(fresh);
  });
  const [replan, drift, migratedDump, freshText] = await timed('checks (fresh build beside)', () =>
    Promise.all([
      plan(migrated, v2, v2),
      checkDrift(migrated.sql, v2),
      dbs.mode === 'each' ? dumpSchema(migrated.url) : snapshot(migrated),
      freshDump,
    ]),
  );

  const findings: string[] = [];
  findings.push(...(await identityBehindRows(migrated, v2)));
  const dataAfter = await timed('data fingerprints', () => fingerprints(migrated, pair.kept ?? [], 'after'));
  for (const [key, value] of dataBefore) {
    if (dataAfter.get(key) !== value) findings.push(`data lost: ${key} held ${value} before the apply, ${dataAfter.get(key) ?? 'nothing'} after`);
  }
  if (replan.steps.length > 0) findings.push(`re-planning v2 is not empty:\n${planText(replan)}`);
  const drifted = drift.differences.filter((d) => !acceptableDrift(d));
  if (drifted.length > 0) findings.push(`drift against v2:\n${drifted.map((d) => `  ${d.kind}: ${d.message}`).join('\n')}`);
  const a = dbs.mode === 'each' ? normaliseDump(migratedDump) : migratedDump;
  const b = dbs.mode === 'each' ? normaliseDump(freshText) : freshText;
  const what = dbs.mode === 'each' ? 'pg_dump' : 'the catalog snapshot';
  if (a !== b) findings.push(`${what} of the migrated database differs from a fresh build of v2 (+ hand-made objects):\n${lineDiff(a, b)}`);
  if (findings.length > 0) throw new OracleFailure('oracle', findings.join('\n'), undefined, text);
  if (dbs.mode === 'batch') {
    // keep both schemas aside for the next pg_dump of many pairs
    const schema = `oracle_${++keptCounter}`;
    const aside = `ALTER SCHEMA public RENAME TO "${schema}"; CREATE SCHEMA public`;
    await timed('keep aside', () => Promise.all([migrated.sql.unsafe(aside), fresh.sql.unsafe(aside)]));
    dbs.kept.set(schema, label);
  }
  return { kind: 'applied', steps: planned.steps.length, destructive: planned.steps.filter((s) => s.destructive).length };
}

/**
 * (d) An identity column of v2 that holds rows hands out values above the largest one it holds
 * (a column that becomes an identity must continue after the existing ids). Takes one value of
 * each such sequence; sequence positions are data, not part of the schema dump.
 */
async function identityBehindRows(db: TestDatabase, declared: SchemaIR): Promise<string[]> {
  const out: string[] = [];
  for (const table of Object.values(declared.tables)) {
    const identity = table.columns.find((c) => c.identity !== null);
    if (!identity) continue;
    const t = `"public"."${table.name}"`;
    const [row] = (await db.sql.unsafe(
      `SELECT (SELECT max("${identity.name}") FROM ${t})::text AS max, nextval(pg_get_serial_sequence('${t}', '${identity.name}'))::text AS next`,
    )) as unknown as { max: string | null; next: string }[];
    if (row?.max != null && BigInt(row.next) <= BigInt(row.max)) {
      out.push(`identity ${table.name}.${identity.name} hands out ${row.next}, but the table already holds ids up to ${row.max}`);
    }
  }
  return out;
}

/**
 * (e) Data kept: for every table v2 keeps (perhaps renamed), its row count and, per column whose
 * type stays (perhaps renamed), a digest of its values in id order. One query per table.
 */
async function fingerprints(db: TestDatabase, kept: readonly KeptTable[], when: 'before' | 'after'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of kept) {
    const table = when === 'before' ? k.before : k.after;
    const name = (pair: readonly [string, string]): string => (when === 'before' ? pair[0] : pair[1]);
    const order = ` ORDER BY "${name(k.id)}"::text`;
    const digests = k.columns.map((c, i) => `md5(coalesce(string_agg(coalesce("${name(c)}"::text, '<null>'), ',' ${order}), '')) AS "c${i}"`);
    const [row] = (await db.sql.unsafe(`SELECT count(*)::int AS n${digests.length > 0 ? `, ${digests.join(', ')}` : ''} FROM "public"."${table}"`)) as unknown as Record<string, string | number>[];
    out.set(`${k.after}: rows`, String(row?.n));
    k.columns.forEach((c, i) => out.set(`${k.after}.${c[1]}: values`, String(row?.[`c${i}`])));
  }
  return out;
}

/** A pair as text a person can read and paste into a named case. */
export function describePair(pair: Pair): string {
  const block = (title: string, lines: readonly string[]): string => (lines.length === 0 ? '' : `--- ${title}\n${lines.join(';\n')};\n`);
  return `--- v1\n${pair.v1}--- v2\n${pair.v2}${block('rows', pair.rows)}${block('hand-made (v1 names)', pair.handmade)}${block('hand-made after v2 (fresh build)', pair.handmadeAfter)}`;
}

