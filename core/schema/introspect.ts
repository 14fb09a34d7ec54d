import type postgres from 'postgres';
import { catalogDefault } from './defaults.ts';
import { ConflictError } from '../errors.ts';
import { compareText, schemaOf, type CheckIR, type ColumnIR, type ConstraintIR, type ForeignKeyIR, type IndexIR, type ReferentialAction, type SchemaIR, type TableIR } from './ir.ts';
import { qualifiedTable, TABLE_SCHEMA } from './names.ts';

/**
 * Live database → IR, in a constant number of catalog queries whatever the number of tables
 * (server version, relations, columns, constraints, indexes, dependents). It reads exactly what the IR describes, for the tables
 * of schema `public` it is told to manage; other tables are only listed by name
 * (`unmanagedTables`), never read further. Whether tables hold rows is a separate, targeted probe
 * (`probeTablesWithRows`): only a few changes depend on it, and reading every table would cost
 * far more than the catalog.
 */

/** Anything that can run a query: a `postgres` instance or a transaction of one. */
export type Queryable = Pick<postgres.Sql, 'unsafe'>;

/** The Postgres major versions the engine reads and writes (see README.md). */
export const SUPPORTED_PG_MAJORS: readonly number[] = [15, 16, 17, 18];

/**
 * An object outside the managed tables that depends on one of them (a view, a rule, a foreign key
 * of an unmanaged table). The engine cannot re-create it, so a step that Postgres would refuse
 * because of it is refused at plan time (`untrackable_dependencies`).
 */
export interface Dependent {
  readonly table: string;
  /** the column it depends on; null when it depends on the table as a whole */
  readonly column: string | null;
  /** `view public.order_totals`, `rule r on public.books`, `foreign key f of public.legacy`, `check constraint c of public.books` */
  readonly description: string;
  /**
   * a CHECK constraint of a managed table (declarations cannot express them, so a DBA made it):
   * Postgres drops it with its column, but re-checks its expression when a column it reads changes
   * type, where it may no longer type-check (`length(bigint)`) — so only a type change depends on it
   */
  readonly typeOnly?: true;
}

export interface LiveSchema {
  /** the managed tables that exist */
  readonly ir: SchemaIR;
  /** tables of the schema that are not managed, sorted */
  readonly unmanagedTables: readonly string[];
  /**
   * tables known to hold at least one row, among those probed; null when not probed (then every
   * table is assumed to hold rows, the safe side for hazard classification)
   */
  readonly tablesWithRows: readonly string[] | null;
  /** number of queries run: constant, whatever the number of tables */
  readonly queries: number;
  /** views, rules and foreign keys outside the managed tables that depend on them (absent: none known) */
  readonly dependents?: readonly Dependent[];
  /** every relation name of the schema (tables, indexes, sequences, views …): names a plan must not reuse */
  readonly relationNames?: readonly string[];
  /** server_version_num of the server read */
  readonly serverVersion?: number;
  /** results of plan-time probes (`plan-live.ts`); absent: not probed */
  readonly probes?: Probes;
}

/** What plan-time probes found: keys are `table` plus the object, as `probeKey` builds them. */
export interface Probes {
  /** unique keys (`table:name`) a plan adds whose columns already hold duplicate values */
  readonly duplicateKeys: readonly string[];
  /** columns (`table.column`) whose values do not fit a newly declared logical type (json → array, items) */
  readonly misfits: readonly string[];
  /** columns (`table.column`) becoming NOT NULL that hold NULLs */
  readonly nulls: readonly string[];
  /** foreign keys (`table:name`) a plan adds whose columns hold values the referenced table lacks */
  readonly missingReferences?: readonly string[];
  /** type changes whose cast fails on the data: the column (`table.column`) and what Postgres said (SQLSTATE and message, no values) */
  readonly castFailures?: readonly { readonly column: string; readonly reason: string }[];
}

export interface IntrospectOptions {
  /** tables to read; default: every table of the schema */
  readonly managedTables?: Iterable<string>;
}

const ACTIONS: Readonly<Record<string, ReferentialAction>> = { a: 'no_action', r: 'restrict', c: 'cascade', n: 'set_null', d: 'set_default' };

const VERSION_QUERY = `SELECT pg_catalog.current_setting('server_version_num')::int4 AS version`;

// every relation of the schema: the tables are read further, the other names are reserved
const TABLES_QUERY = `
SELECT c.oid::int8 AS oid, c.relname::text AS name, c.relkind::text AS kind, c.relispartition AS partition
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1`;

const COLUMNS_QUERY = `
SELECT a.attrelid::int8 AS table_oid, a.attnum::int4 AS num, a.attname::text AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation THEN
         CASE WHEN cn.nspname = 'pg_catalog' THEN pg_catalog.quote_ident(co.collname)
              ELSE pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END
       END AS collation
FROM unnest($1::oid[]) AS m(oid)
JOIN pg_catalog.pg_attribute a ON a.attrelid = m.oid
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped`;

// Key columns come back as attribute numbers, as space-separated text (an int2vector cast to an
// array keeps a zero lower bound the driver misreads), and are named from the columns query. Only
// the referenced side of a foreign key (perhaps a table we do not read) is named here. The full
// definition (pg_get_constraintdef) is read only for what a declaration cannot express: CHECK and
// EXCLUDE constraints, and keys that are DEFERRABLE, NOT VALID, MATCH FULL or NULLS NOT DISTINCT.
const CONSTRAINTS_QUERY = `
SELECT x.table_oid, x.name, x.kind, x.keys, x.ref_table, x.ref_columns, x.on_delete, x.on_update,
       CASE WHEN x.plain THEN NULL ELSE pg_catalog.pg_get_constraintdef(x.oid) END AS definition
FROM (
  SELECT con.oid, con.conrelid::int8 AS table_oid, con.conname::text AS name, con.contype::text AS kind,
         pg_catalog.array_to_string(con.conkey, ' ') AS keys,
         CASE WHEN rn.nspname = $2 THEN rc.relname::text ELSE rn.nspname || '.' || rc.relname END AS ref_table,
         CASE WHEN con.contype = 'f' THEN
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
         END AS ref_columns,
         con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
         (con.contype IN ('p', 'u', 'f') AND NOT con.condeferrable AND con.convalidated
          AND (con.contype <> 'f' OR con.confmatchtype = 's')
          AND NOT COALESCE((SELECT i.indnullsnotdistinct OR i.indnkeyatts <> i.indnatts
                            FROM pg_catalog.pg_index i WHERE i.indexrelid = con.conindid AND con.contype <> 'f'), false)) AS plain
  FROM unnest($1::oid[]) AS m(oid)
  JOIN pg_catalog.pg_constraint con ON con.conrelid = m.oid
  LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
  LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
  WHERE con.contype IN ('p', 'u', 'f', 'c', 'x')
  OFFSET 0
) AS x`;

// An index is "plain" when a declaration could have produced it: btree over plain columns with
// default operator classes and ordering, no predicate, no INCLUDE. Others keep their definition
// (pg_get_indexdef is the costly part, so it runs only for those; OFFSET 0 keeps the inner query
// from being flattened, which would evaluate "plain" twice).
const INDEXES_QUERY = `
SELECT x.table_oid, x.name, x.is_unique, x.keys, x.plain, x.valid,
       CASE WHEN x.plain THEN NULL ELSE pg_catalog.pg_get_indexdef(x.indexrelid) END AS definition
FROM (
  SELECT i.indrelid::int8 AS table_oid, i.indexrelid, ic.relname::text AS name, i.indisunique AS is_unique,
         i.indkey::text AS keys, i.indisvalid AS valid,
         (i.indexprs IS NULL AND i.indpred IS NULL AND am.amname = 'btree' AND i.indnkeyatts = i.indnatts
          AND NOT i.indnullsnotdistinct
          AND 0 <> ALL (i.indkey::int2[]) AND 0 = ALL (i.indoption::int2[])
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_opclass opc
                          WHERE opc.oid = ANY (i.indclass::oid[]) AND NOT opc.opcdefault)
          AND NOT EXISTS (SELECT 1 FROM unnest(i.indcollation::oid[]) AS ico(oid)
                          WHERE ico.oid NOT IN (0, 100))) AS plain
  FROM unnest($1::oid[]) AS m(oid)
  JOIN pg_catalog.pg_index i ON i.indrelid = m.oid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                    WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
  OFFSET 0
) AS x`;

// Objects outside the managed tables that depend on them: views, materialized views and rules
// (through pg_rewrite), and foreign keys of tables that are not managed.
const DEPENDENTS_QUERY = `
SELECT DISTINCT d.refobjid::int8 AS table_oid, d.refobjsubid::int4 AS num,
       CASE WHEN v.relkind = 'v' THEN 'view ' || vn.nspname || '.' || v.relname
            WHEN v.relkind = 'm' THEN 'materialized view ' || vn.nspname || '.' || v.relname
            ELSE 'rule ' || r.rulename || ' on ' || vn.nspname || '.' || v.relname END AS description
FROM unnest($1::oid[]) AS m(oid)
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = m.oid
                           AND d.classid = 'pg_catalog.pg_rewrite'::regclass
JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
UNION
SELECT con.confrelid::int8, k.num::int4, 'foreign key ' || con.conname || ' of ' || n.nspname || '.' || c.relname
FROM unnest($1::oid[]) AS m(oid)
JOIN pg_catalog.pg_constraint con ON con.confrelid = m.oid AND con.contype = 'f' AND con.conrelid <> ALL ($1::oid[])
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(con.confkey) AS k(num)`;

interface TableRow { oid: string; name: string; kind: string; partition: boolean }
interface ColumnRow { table_oid: string; num: number; name: string; type: string; not_null: boolean; identity: string; generated: string; default_expr: string | null; collation: string | null }
interface ConstraintRow {
  table_oid: string;
  name: string;
  kind: string;
  keys: string;
  ref_table: string | null;
  ref_columns: string[] | null;
  on_delete: string;
  on_update: string;
  definition: string | null;
}
interface IndexRow { table_oid: string; name: string; is_unique: boolean; keys: string; plain: boolean; valid: boolean; definition: string | null }
interface DependentRow { table_oid: string; num: number; description: string }

const byName = <T extends { readonly name: string }>(a: T, b: T): number => compareText(a.name, b.name);

/** The server is older or newer than the engine knows: its catalog may not mean what we read. */
export class UnsupportedServerError extends ConflictError {
  readonly version: number;
  constructor(version: number) {
    const major = Math.floor(version / 10_000);
    super(`Postgres ${major} (server_version_num ${version}) is not supported by the schema engine; supported major versions: ${SUPPORTED_PG_MAJORS.join(', ')}`, {
      reason: 'UnsupportedServer',
      hint: `point the connection at a Postgres ${SUPPORTED_PG_MAJORS[0]}–${SUPPORTED_PG_MAJORS[SUPPORTED_PG_MAJORS.length - 1]} server`,
    });
    this.version = version;
  }
}

/** Throws UnsupportedServerError unless `server_version_num` is of a supported major version. */
export function checkServerVersion(version: number): void {
  if (!SUPPORTED_PG_MAJORS.includes(Math.floor(version / 10_000))) throw new UnsupportedServerError(version);
}

/** Reads the live schema of the managed tables (see IntrospectOptions). */
export async function introspectSchema(sql: Queryable, options: IntrospectOptions = {}): Promise<LiveSchema> {
  const [versionRow] = (await sql.unsafe(VERSION_QUERY)) as unknown as { version: number }[];
  const serverVersion = Number(versionRow?.version ?? 0);
  checkServerVersion(serverVersion);
  const relations = (await sql.unsafe(TABLES_QUERY, [TABLE_SCHEMA])) as unknown as TableRow[];
  let queries = 2;
  const relationNames = relations.map((r) => r.name).sort(compareText);
  const all = relations.filter((r) => (r.kind === 'r' || r.kind === 'p') && !r.partition);
  const wanted = options.managedTables === undefined ? undefined : new Set(options.managedTables);
  const managed = all.filter((t) => wanted === undefined || wanted.has(t.name));
  const unmanagedTables = all
    .filter((t) => wanted !== undefined && !wanted.has(t.name))
    .map((t) => t.name)
    .sort(compareText);
  if (managed.length === 0) return { ir: schemaOf([]), unmanagedTables, tablesWithRows: null, queries, dependents: [], relationNames, serverVersion };

  const oids = `{${managed.map((t) => t.oid).join(',')}}`;
  const [columns, constraints, indexes, dependentRows] = await Promise.all([
    sql.unsafe(COLUMNS_QUERY, [oids]) as unknown as Promise<ColumnRow[]>,
    sql.unsafe(CONSTRAINTS_QUERY, [oids, TABLE_SCHEMA]) as unknown as Promise<ConstraintRow[]>,
    sql.unsafe(INDEXES_QUERY, [oids]) as unknown as Promise<IndexRow[]>,
    sql.unsafe(DEPENDENTS_QUERY, [oids]) as unknown as Promise<DependentRow[]>,
  ]);
  queries += 4;

  interface Parts { name: string; names: Map<number, string>; columns: { num: number; column: ColumnIR }[]; primaryKey: ConstraintIR | null; uniques: ConstraintIR[]; indexes: IndexIR[]; foreignKeys: ForeignKeyIR[]; checks: CheckIR[] }
  const parts = new Map<string, Parts>();
  for (const t of managed) parts.set(String(t.oid), { name: t.name, names: new Map(), columns: [], primaryKey: null, uniques: [], indexes: [], foreignKeys: [], checks: [] });

  for (const c of columns) {
    const table = parts.get(String(c.table_oid));
    if (!table) continue;
    const identity = c.identity === 'd' ? 'by_default' : c.identity === 'a' ? 'always' : null;
    let defaultSql: string | null = null;
    if (c.default_expr !== null) defaultSql = c.generated === 's' ? `GENERATED ALWAYS AS (${c.default_expr}) STORED` : catalogDefault(c.type, c.default_expr);
    const column: ColumnIR = { ...(c.collation === null ? {} : { collation: c.collation }), default: defaultSql, identity, name: c.name, nullable: !c.not_null, type: c.type };
    table.columns.push({ num: c.num, column });
    table.names.set(c.num, c.name);
  }
  // attribute numbers → names; 0 (an expression in an index) has no name and is left out
  const named = (names: Map<number, string>, keys: string): string[] => (keys === '' || keys === null ? [] : keys.split(' ').flatMap((k) => names.get(Number(k)) ?? []));
  for (const c of constraints) {
    const table = parts.get(String(c.table_oid));
    if (!table) continue;
    const columns = named(table.names, c.keys);
    const definition = c.definition === null ? {} : { definition: c.definition };
    if (c.kind === 'p') table.primaryKey = { columns, ...definition, name: c.name };
    else if (c.kind === 'u') table.uniques.push({ columns, ...definition, name: c.name });
    else if (c.kind === 'c' || c.kind === 'x') table.checks.push({ definition: c.definition ?? '', name: c.name });
    else {
      table.foreignKeys.push({
        columns,
        ...definition,
        name: c.name,
        onDelete: ACTIONS[c.on_delete] ?? 'no_action',
        onUpdate: ACTIONS[c.on_update] ?? 'no_action',
        refColumns: c.ref_columns ?? [],
        refTable: c.ref_table ?? '',
      });
    }
  }
  for (const ix of indexes) {
    const table = parts.get(String(ix.table_oid));
    if (!table) continue;
    table.indexes.push({ columns: named(table.names, ix.keys), definition: ix.plain ? null : ix.definition, name: ix.name, unique: ix.is_unique, ...(ix.valid ? {} : { valid: false as const }) });
  }
  const dependents: Dependent[] = [];
  for (const c of constraints) {
    const table = parts.get(String(c.table_oid));
    if (!table || c.kind !== 'c') continue;
    for (const column of named(table.names, c.keys)) dependents.push({ column, description: `check constraint ${c.name} of ${TABLE_SCHEMA}.${table.name}`, table: table.name, typeOnly: true });
  }
  for (const d of dependentRows) {
    const table = parts.get(String(d.table_oid));
    if (!table) continue;
    dependents.push({ column: d.num === 0 ? null : (table.names.get(d.num) ?? null), description: d.description, table: table.name });
  }
  dependents.sort((a, b) => compareText(a.table, b.table) || compareText(a.description, b.description) || compareText(a.column ?? '', b.column ?? ''));

  // keys in code-point order, so canonicalJson (and with it every plan) need not re-order them
  const tables: TableIR[] = [...parts.values()].map((t) => ({
    ...(t.checks.length === 0 ? {} : { checks: t.checks.sort(byName) }),
    columns: t.columns.sort((a, b) => a.num - b.num).map((c) => c.column),
    foreignKeys: t.foreignKeys.sort(byName),
    indexes: t.indexes.sort(byName),
    name: t.name,
    primaryKey: t.primaryKey,
    uniques: t.uniques.sort(byName),
  }));
  return { ir: schemaOf(tables), unmanagedTables, tablesWithRows: null, queries, dependents, relationNames, serverVersion };
}

/** Postgres allows 1,664 result columns; stay well below. */
const PROBE_BATCH = 500;

/**
 * Which of these tables (in `public`) hold at least one row: one `EXISTS` per table, answered from
 * the first row found, batched into few statements. Takes ACCESS SHARE locks, like any read.
 */
export async function probeTablesWithRows(sql: Queryable, tables: Iterable<string>): Promise<string[]> {
  const names = [...new Set(tables)].sort(compareText);
  const found: string[] = [];
  for (let start = 0; start < names.length; start += PROBE_BATCH) {
    const batch = names.slice(start, start + PROBE_BATCH);
    const select = batch.map((t, i) => `EXISTS (SELECT 1 FROM ${qualifiedTable(t)}) AS "t${i}"`).join(', ');
    const [row] = (await sql.unsafe(`SELECT ${select}`)) as unknown as Record<string, boolean>[];
    batch.forEach((t, i) => {
      if (row?.[`t${i}`] === true) found.push(t);
    });
  }
  return found;
}
