import type { Change } from './changes.ts';
import { diffSchemas } from './diff.ts';
import { dependsOnRows, probeKey, type HazardKind } from './hazards.ts';
import { introspectSchema, type LiveSchema, type Queryable } from './introspect.ts';
import { compareText, pickTables, type SchemaIR } from './ir.ts';
import { qualifiedTable, quoteIdent } from './names.ts';
import { managedTablesOf, planSchemaChanges, type SchemaPlan } from './plan.ts';
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
 *     hold NULLs when it becomes NOT NULL.
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
}

/** Runs the probes the plan needs against the live data and returns the live schema with their results. */
export async function probeLive(sql: Queryable, declared: SchemaIR, live: LiveSchema, previous: SchemaIR | null, managed: readonly string[]): Promise<LiveSchema> {
  const changes = diffSchemas(declared, pickTables(live.ir, managed), previous);
  const probes = probesFor(changes, live.ir);
  const found: Found = { rows: [], duplicateKeys: [], misfits: [], nulls: [] };
  for (let start = 0; start < probes.length; start += PROBE_BATCH) {
    const batch = probes.slice(start, start + PROBE_BATCH);
    const [row] = (await sql.unsafe(`SELECT ${batch.map((p, i) => `${p.sql} AS "p${i}"`).join(', ')}`)) as unknown as Record<string, boolean>[];
    batch.forEach((p, i) => {
      if (row?.[`p${i}`] === true) p.found(found);
    });
  }
  const sorted = (xs: string[]): string[] => [...new Set(xs)].sort(compareText);
  return { ...live, tablesWithRows: sorted(found.rows), probes: { duplicateKeys: sorted(found.duplicateKeys), misfits: sorted(found.misfits), nulls: sorted(found.nulls) } };
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
    if (c.kind === 'check_values') {
      const col = liveColumn(c.table, c.column);
      if (col !== undefined) {
        probes.push({ sql: `EXISTS (SELECT 1 FROM ${from} WHERE NOT (${fitsLogicalType(col, c.to, c.items)}))`, found: (f) => f.misfits.push(probeKey.column(c.table, c.column)) });
      }
    }
  }
  return probes;
}
