import type { Change } from './changes.ts';
import { diffSchemas } from './diff.ts';
import { dependsOnRows, probeKey, type HazardKind } from './hazards.ts';
import { introspectSchema, type LiveSchema, type Queryable } from './introspect.ts';
import { compareText, pickTables, type SchemaIR } from './ir.ts';
import { qualifiedTable, quoteIdent } from './names.ts';
import { managedTablesOf, planSchemaChanges, type SchemaPlan } from './plan.ts';
import { castOf } from './casts.ts';
import { fitsLogicalType } from './sql.ts';

export interface LivePlanInput {
  readonly declared: SchemaIR;
  readonly previous?: SchemaIR | null;
  readonly allowHazards?: readonly HazardKind[];
  readonly connection?: string;
}

/**
 * The one way to plan one connection, for the operator and the CLI alike: introspect its managed
 * tables (a constant number of catalog queries), then ask the data only what the plan's
 * classification depends on (usually nothing), then plan:
 *   - whether a table holds rows, for the steps whose hazards depend on it (a NOT NULL column
 *     without default, a type change);
 *   - whether the columns of a unique key the plan adds already hold duplicates (then the step is
 *     refused at plan time instead of failing at apply);
 *   - whether a column's values fit a newly declared logical type (json → array, array items), or
 *     hold NULLs when it becomes NOT NULL;
 *   - whether the columns of a foreign key the plan adds hold values the referenced table lacks
 *     (an anti-join);
 *   - whether a type change's cast, which may fail on some values (text → json, text → integer,
 *     bigint → integer …), fails on the values the column holds: the cast is run over the column in
 *     a read-only transaction that is rolled back, with a bounded statement timeout, and what
 *     Postgres said (SQLSTATE and message, never the values) becomes the reason the step is refused.
 */
export async function planLiveSchemaChanges(sql: Queryable, input: LivePlanInput): Promise<SchemaPlan> {
  const managed = managedTablesOf(input.declared, input.previous);
  const live = await introspectSchema(sql, { managedTables: managed });
  const probed = await probeLive(sql, input.declared, live, input.previous ?? null, managed);
  return planSchemaChanges({ ...input, live: probed });
}

interface Probe {
  readonly sql: string;
  readonly found: (out: Found) => void;
}
interface Found {
  rows: string[];
  duplicateKeys: string[];
  misfits: string[];
  nulls: string[];
  missingReferences: string[];
}

/** A cast run over a column's values at plan time (see `castProbes`). */
interface CastProbe {
  /** `table.column` as the declaration names it */
  readonly column: string;
  readonly sql: string;
}

/** Runs the probes the plan needs against the live data and returns the live schema with their results. */
export async function probeLive(sql: Queryable, declared: SchemaIR, live: LiveSchema, previous: SchemaIR | null, managed: readonly string[]): Promise<LiveSchema> {
  const changes = diffSchemas(declared, pickTables(live.ir, managed), previous);
  const probes = probesFor(changes, live.ir);
  const found: Found = { rows: [], duplicateKeys: [], misfits: [], nulls: [], missingReferences: [] };
  for (let start = 0; start < probes.length; start += PROBE_BATCH) {
    const batch = probes.slice(start, start + PROBE_BATCH);
    const [row] = (await sql.unsafe(`SELECT ${batch.map((p, i) => `${p.sql} AS "p${i}"`).join(', ')}`)) as unknown as Record<string, boolean>[];
    batch.forEach((p, i) => {
      if (row?.[`p${i}`] === true) p.found(found);
    });
  }
  const castFailures: { column: string; reason: string }[] = [];
  for (const probe of castProbes(changes, live.ir)) {
    const reason = await castFailure(sql, probe.sql);
    if (reason !== undefined) castFailures.push({ column: probe.column, reason });
  }
  const sorted = (xs: string[]): string[] => [...new Set(xs)].sort(compareText);
  return {
    ...live,
    tablesWithRows: sorted(found.rows),
    probes: {
      duplicateKeys: sorted(found.duplicateKeys),
      misfits: sorted(found.misfits),
      nulls: sorted(found.nulls),
      ...(found.missingReferences.length > 0 ? { missingReferences: sorted(found.missingReferences) } : {}),
      ...(castFailures.length > 0 ? { castFailures: castFailures.sort((a, b) => compareText(a.column, b.column)) } : {}),
    },
  };
}

/** Bound on one cast probe: it reads the column once, as the apply's rewrite would. */
const CAST_PROBE_TIMEOUT_MS = 10_000;

/** A rollback that carries the probe's result out of `begin`. */
class RolledBack {
  readonly reason: string | undefined;
  constructor(reason: string | undefined) {
    this.reason = reason;
  }
}

interface Transactional {
  begin?: (run: (tx: Queryable) => Promise<unknown>) => Promise<unknown>;
  savepoint?: (run: (tx: Queryable) => Promise<unknown>) => Promise<unknown>;
}

/**
 * Runs a cast probe read-only, in a transaction (or a savepoint, inside one) that is always rolled
 * back, and returns why it failed: SQLSTATE and Postgres' message with quoted text (which may hold
 * a value) left out. A data error (class 22) or a rejected expression (class 42) is a reason; a
 * probe that runs out of time tells nothing (the step keeps its `correctness` hazard); anything
 * else (a lost connection …) is thrown.
 */
async function castFailure(sql: Queryable, query: string): Promise<string | undefined> {
  const run = async (tx: Queryable): Promise<never> => {
    let reason: string | undefined;
    try {
      await tx.unsafe("SELECT pg_catalog.set_config('transaction_read_only', 'on', true), pg_catalog.set_config('statement_timeout', $1, true)", [`${CAST_PROBE_TIMEOUT_MS}ms`]);
      await tx.unsafe(query);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !/^(22|42|57014)/.test(code)) throw err;
      if (code !== '57014') reason = `Postgres says ${code}: ${String((err as Error).message).replace(/"(?:[^"]|"")*"/g, '"…"').slice(0, 200)}`;
    }
    throw new RolledBack(reason);
  };
  const t = sql as Queryable & Transactional;
  try {
    if (typeof t.begin === 'function') await t.begin(run);
    else if (typeof t.savepoint === 'function') await t.savepoint(run);
    else throw new TypeError('a cast probe needs a connection pool or a transaction');
  } catch (err) {
    if (err instanceof RolledBack) return err.reason;
    throw err;
  }
  return undefined;
}

/**
 * The type changes whose cast may fail on some values (neither exact nor impossible), over
 * columns that exist now: `count(cast)` evaluates the cast on every row (an unused output of a
 * subquery would be optimised away).
 */
function castProbes(changes: readonly Change[], live: SchemaIR): CastProbe[] {
  const created = new Set(changes.filter((c) => c.kind === 'create_table').map((c) => c.table));
  const tableFrom = new Map(changes.flatMap((c) => (c.kind === 'rename_table' ? [[c.table, c.from] as const] : [])));
  const columnFrom = new Map(changes.flatMap((c) => (c.kind === 'rename_column' ? [[`${c.table}.${c.to}`, c.from] as const] : [])));
  const out: CastProbe[] = [];
  for (const c of changes) {
    if (c.kind !== 'alter_column_type' || created.has(c.table)) continue;
    const table = tableFrom.get(c.table) ?? c.table;
    const column = columnFrom.get(`${c.table}.${c.column}`) ?? c.column;
    if (!live.tables[table]?.columns.some((x) => x.name === column)) continue;
    const cast = castOf(column, c.from, c.to);
    if (cast.effect === 'exact' || cast.using === null) continue;
    out.push({ column: probeKey.column(c.table, c.column), sql: `SELECT count(${cast.using}) FROM ${qualifiedTable(table)}` });
  }
  return out;
}


/** Postgres allows 1,664 result columns; stay well below. */
const PROBE_BATCH = 500;

function probesFor(changes: readonly Change[], live: SchemaIR): Probe[] {
  const created = new Set(changes.filter((c) => c.kind === 'create_table').map((c) => c.table));
  // the live names of renamed tables and columns: probes read the data as it is now
  const tableFrom = new Map(changes.flatMap((c) => (c.kind === 'rename_table' ? [[c.table, c.from] as const] : [])));
  const columnFrom = new Map(changes.flatMap((c) => (c.kind === 'rename_column' ? [[`${c.table}.${c.to}`, c.from] as const] : [])));
  const retyped = new Set(changes.flatMap((c) => (c.kind === 'alter_column_type' ? [`${c.table}.${c.column}`] : [])));
  const liveTable = (t: string): string => tableFrom.get(t) ?? t;
  const liveColumn = (t: string, c: string): string | undefined => {
    const name = columnFrom.get(`${t}.${c}`) ?? c;
    return live.tables[liveTable(t)]?.columns.some((x) => x.name === name) ? name : undefined;
  };
  // columns this plan adds (`table.column`): a new key column holds its default
  const addedColumns = new Map(changes.flatMap((c) => (c.kind === 'add_column' ? [[`${c.table}.${c.column.name}`, c.column] as const] : [])));
  const probes: Probe[] = [];
  const rowTables = new Set<string>();
  for (const c of changes) {
    if (created.has(c.table)) continue;
    const from = qualifiedTable(liveTable(c.table));
    if (dependsOnRows(c) && !rowTables.has(c.table)) {
      rowTables.add(c.table);
      probes.push({ sql: `EXISTS (SELECT 1 FROM ${from})`, found: (f) => f.rows.push(c.table) });
    }
    const key =
      c.kind === 'add_unique' || c.kind === 'add_primary_key'
        ? { name: c.constraint.name, columns: c.constraint.columns }
        : c.kind === 'create_index' && c.index.unique && c.index.definition === null
          ? { name: c.index.name, columns: c.index.columns }
          : null;
    if (key !== null) {
      // only columns that exist now and keep their values: a new or retyped column is not probed
      const cols = key.columns.map((col) => (retyped.has(`${c.table}.${col}`) ? undefined : liveColumn(c.table, col)));
      if (cols.every((x): x is string => x !== undefined)) {
        const list = cols.map(quoteIdent).join(', ');
        const notNull = cols.map((x) => `${quoteIdent(x)} IS NOT NULL`).join(' AND ');
        probes.push({
          sql: `EXISTS (SELECT 1 FROM ${from} WHERE ${notNull} GROUP BY ${list} HAVING count(*) > 1)`,
          found: (f) => f.duplicateKeys.push(probeKey.key(c.table, key.name)),
        });
      }
    }
    if (c.kind === 'set_not_null') {
      const col = liveColumn(c.table, c.column);
      if (col !== undefined) probes.push({ sql: `EXISTS (SELECT 1 FROM ${from} WHERE ${quoteIdent(col)} IS NULL)`, found: (f) => f.nulls.push(probeKey.column(c.table, c.column)) });
    }
    if (c.kind === 'add_foreign_key') {
      // MATCH SIMPLE: a row with a NULL in the key is not checked. Each key column reads as it is
      // now, or, when this plan adds it, as its constant default (no default: NULL, nothing to
      // check); probed only over columns that keep their type and compare as they are.
      const fk = c.foreignKey;
      const typeOf = (t: string, col: string): string | undefined => live.tables[t]?.columns.find((x) => x.name === col)?.type;
      const keyColumns = fk.columns.map((col): { expr: string; type: string } | null | undefined => {
        if (retyped.has(`${c.table}.${col}`)) return undefined;
        const now = liveColumn(c.table, col);
        if (now !== undefined) {
          const type = typeOf(liveTable(c.table), now);
          return type === undefined ? undefined : { expr: `s.${quoteIdent(now)}`, type };
        }
        const added = addedColumns.get(`${c.table}.${col}`);
        if (added === undefined || added.identity !== null) return undefined;
        if (added.default === null) return null;
        return /^[a-z_][a-z0-9_.]*\(/i.test(added.default) ? undefined : { expr: `(${added.default})`, type: added.type };
      });
      if (keyColumns.every((x) => x !== undefined) && !keyColumns.includes(null)) {
        const cols = keyColumns as { expr: string; type: string }[];
        const notNull = cols.map((x) => `${x.expr} IS NOT NULL`).join(' AND ');
        const report = (f: Found): void => void f.missingReferences.push(probeKey.key(c.table, fk.name));
        if (created.has(fk.refTable)) {
          probes.push({ sql: `EXISTS (SELECT 1 FROM ${from} AS s WHERE ${notNull})`, found: report });
        } else {
          const refTable = liveTable(fk.refTable);
          const refCols = fk.refColumns.map((col) => (retyped.has(`${fk.refTable}.${col}`) ? undefined : liveColumn(fk.refTable, col)));
          const comparable = refCols.length === cols.length && refCols.every((x, i): x is string => x !== undefined && typeOf(refTable, x) === cols[i]?.type);
          if (comparable) {
            const match = cols.map((x, i) => `r.${quoteIdent(refCols[i] as string)} = ${x.expr}`).join(' AND ');
            probes.push({ sql: `EXISTS (SELECT 1 FROM ${from} AS s WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${qualifiedTable(refTable)} AS r WHERE ${match}))`, found: report });
          }
        }
      }
    }
    if (c.kind === 'check_values') {
      const col = liveColumn(c.table, c.column);
      if (col !== undefined) {
        probes.push({ sql: `EXISTS (SELECT 1 FROM ${from} WHERE NOT (${fitsLogicalType(col, c.to, c.items)}))`, found: (f) => f.misfits.push(probeKey.column(c.table, c.column)) });
      }
    }
  }
  return probes;
}
