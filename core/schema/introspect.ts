import type postgres from 'postgres';
import { catalogDefault } from './defaults.ts';
import { compareText, schemaOf, type ColumnIR, type ConstraintIR, type ForeignKeyIR, type IndexIR, type ReferentialAction, type SchemaIR, type TableIR } from './ir.ts';
import { qualifiedTable, TABLE_SCHEMA } from './names.ts';

/**
 * Live database → IR, in a constant number of catalog queries whatever the number of tables
 * (tables, columns, constraints, indexes). It reads exactly what the IR describes, for the tables
 * of schema `public` it is told to manage; other tables are only listed by name
 * (`unmanagedTables`), never read further. Whether tables hold rows is a separate, targeted probe
 * (`probeTablesWithRows`): only a few changes depend on it, and reading every table would cost
 * far more than the catalog.
 */

/** Anything that can run a query: a `postgres` instance or a transaction of one. */
export type Queryable = Pick<postgres.Sql, 'unsafe'>;

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
}

export interface IntrospectOptions {
  /** tables to read; default: every table of the schema */
  readonly managedTables?: Iterable<string>;
}

const ACTIONS: Readonly<Record<string, ReferentialAction>> = { a: 'no_action', r: 'restrict', c: 'cascade', n: 'set_null', d: 'set_default' };

const TABLES_QUERY = `
SELECT c.oid::int8 AS oid, c.relname::text AS name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition`;

const COLUMNS_QUERY = `
SELECT a.attrelid::int8 AS table_oid, a.attnum::int4 AS num, a.attname::text AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr
FROM unnest($1::oid[]) AS m(oid)
JOIN pg_catalog.pg_attribute a ON a.attrelid = m.oid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped`;

// Key columns come back as attribute numbers, as space-separated text (an int2vector cast to an
// array keeps a zero lower bound the driver misreads), and are named from the columns query. Only
// the referenced side of a foreign key (perhaps a table we do not read) is named here.
const CONSTRAINTS_QUERY = `
SELECT con.conrelid::int8 AS table_oid, con.conname::text AS name, con.contype::text AS kind,
       pg_catalog.array_to_string(con.conkey, ' ') AS keys,
       CASE WHEN rn.nspname = $2 THEN rc.relname::text ELSE rn.nspname || '.' || rc.relname END AS ref_table,
       CASE WHEN con.contype = 'f' THEN
         ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
       END AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update
FROM unnest($1::oid[]) AS m(oid)
JOIN pg_catalog.pg_constraint con ON con.conrelid = m.oid
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.contype IN ('p', 'u', 'f')`;

// An index is "plain" when a declaration could have produced it: btree over plain columns with
// default operator classes and ordering, no predicate, no INCLUDE. Others keep their definition
// (pg_get_indexdef is the costly part, so it runs only for those; OFFSET 0 keeps the inner query
// from being flattened, which would evaluate "plain" twice).
const INDEXES_QUERY = `
SELECT x.table_oid, x.name, x.is_unique, x.keys, x.plain,
       CASE WHEN x.plain THEN NULL ELSE pg_catalog.pg_get_indexdef(x.indexrelid) END AS definition
FROM (
  SELECT i.indrelid::int8 AS table_oid, i.indexrelid, ic.relname::text AS name, i.indisunique AS is_unique,
         i.indkey::text AS keys,
         (i.indexprs IS NULL AND i.indpred IS NULL AND am.amname = 'btree' AND i.indnkeyatts = i.indnatts
          AND NOT i.indnullsnotdistinct
          AND 0 <> ALL (i.indkey::int2[]) AND 0 = ALL (i.indoption::int2[])
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_opclass opc
                          WHERE opc.oid = ANY (i.indclass::oid[]) AND NOT opc.opcdefault)) AS plain
  FROM unnest($1::oid[]) AS m(oid)
  JOIN pg_catalog.pg_index i ON i.indrelid = m.oid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                    WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
  OFFSET 0
) AS x`;

interface TableRow { oid: string; name: string }
interface ColumnRow { table_oid: string; num: number; name: string; type: string; not_null: boolean; identity: string; generated: string; default_expr: string | null }
interface ConstraintRow {
  table_oid: string;
  name: string;
  kind: string;
  keys: string;
  ref_table: string | null;
  ref_columns: string[] | null;
  on_delete: string;
  on_update: string;
}
interface IndexRow { table_oid: string; name: string; is_unique: boolean; keys: string; plain: boolean; definition: string | null }

const byName = <T extends { readonly name: string }>(a: T, b: T): number => compareText(a.name, b.name);

/** Reads the live schema of the managed tables (see IntrospectOptions). */
export async function introspectSchema(sql: Queryable, options: IntrospectOptions = {}): Promise<LiveSchema> {
  const all = (await sql.unsafe(TABLES_QUERY, [TABLE_SCHEMA])) as unknown as TableRow[];
  let queries = 1;
  const wanted = options.managedTables === undefined ? undefined : new Set(options.managedTables);
  const managed = all.filter((t) => wanted === undefined || wanted.has(t.name));
  const unmanagedTables = all
    .filter((t) => wanted !== undefined && !wanted.has(t.name))
    .map((t) => t.name)
    .sort(compareText);
  if (managed.length === 0) return { ir: schemaOf([]), unmanagedTables, tablesWithRows: null, queries };

  const oids = `{${managed.map((t) => t.oid).join(',')}}`;
  const [columns, constraints, indexes] = await Promise.all([
    sql.unsafe(COLUMNS_QUERY, [oids]) as unknown as Promise<ColumnRow[]>,
    sql.unsafe(CONSTRAINTS_QUERY, [oids, TABLE_SCHEMA]) as unknown as Promise<ConstraintRow[]>,
    sql.unsafe(INDEXES_QUERY, [oids]) as unknown as Promise<IndexRow[]>,
  ]);
  queries += 3;

  const parts = new Map<string, { name: string; names: Map<number, string>; columns: { num: number; column: ColumnIR }[]; primaryKey: ConstraintIR | null; uniques: ConstraintIR[]; indexes: IndexIR[]; foreignKeys: ForeignKeyIR[] }>();
  for (const t of managed) parts.set(String(t.oid), { name: t.name, names: new Map(), columns: [], primaryKey: null, uniques: [], indexes: [], foreignKeys: [] });

  for (const c of columns) {
    const table = parts.get(String(c.table_oid));
    if (!table) continue;
    const identity = c.identity === 'd' ? 'by_default' : c.identity === 'a' ? 'always' : null;
    let defaultSql: string | null = null;
    if (c.default_expr !== null) defaultSql = c.generated === 's' ? `GENERATED ALWAYS AS (${c.default_expr}) STORED` : catalogDefault(c.type, c.default_expr);
    table.columns.push({ num: c.num, column: { default: defaultSql, identity, name: c.name, nullable: !c.not_null, type: c.type } });
    table.names.set(c.num, c.name);
  }
  // attribute numbers → names; 0 (an expression in an index) has no name and is left out
  const named = (names: Map<number, string>, keys: string): string[] => (keys === '' ? [] : keys.split(' ').flatMap((k) => names.get(Number(k)) ?? []));
  for (const c of constraints) {
    const table = parts.get(String(c.table_oid));
    if (!table) continue;
    const columns = named(table.names, c.keys);
    if (c.kind === 'p') table.primaryKey = { columns, name: c.name };
    else if (c.kind === 'u') table.uniques.push({ columns, name: c.name });
    else {
      table.foreignKeys.push({
        columns,
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
    table.indexes.push({ columns: named(table.names, ix.keys), definition: ix.plain ? null : ix.definition, name: ix.name, unique: ix.is_unique });
  }

  // keys in code-point order, so canonicalJson (and with it every plan) need not re-order them
  const tables: TableIR[] = [...parts.values()].map((t) => ({
    columns: t.columns.sort((a, b) => a.num - b.num).map((c) => c.column),
    foreignKeys: t.foreignKeys.sort(byName),
    indexes: t.indexes.sort(byName),
    name: t.name,
    primaryKey: t.primaryKey,
    uniques: t.uniques.sort(byName),
  }));
  return { ir: schemaOf(tables), unmanagedTables, tablesWithRows: null, queries };
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
