import type postgres from 'postgres';
import { catalogDefault } from './defaults.ts';
import { compareText, schemaOf, type ColumnIR, type ConstraintIR, type ForeignKeyIR, type IndexIR, type ReferentialAction, type SchemaIR, type TableIR } from './ir.ts';
import { TABLE_SCHEMA } from './names.ts';

/**
 * Live database → IR, in a constant number of catalog queries whatever the number of tables
 * (tables, columns, constraints, indexes; plus one probe for which tables hold rows). It reads
 * exactly what the IR describes, for the tables of schema `public` it is told to manage; other
 * tables are only listed by name (`unmanagedTables`), never read further.
 */

/** Anything that can run a query: a `postgres` instance or a transaction of one. */
export type Queryable = Pick<postgres.Sql, 'unsafe'>;

export interface LiveSchema {
  /** the managed tables that exist */
  readonly ir: SchemaIR;
  /** tables of the schema that are not managed, sorted */
  readonly unmanagedTables: readonly string[];
  /** managed tables holding at least one row; null when not probed (then assume every table has rows) */
  readonly tablesWithRows: readonly string[] | null;
  /** number of queries run: constant, whatever the number of tables */
  readonly queries: number;
}

export interface IntrospectOptions {
  /** tables to read; default: every table of the schema */
  readonly managedTables?: Iterable<string>;
  /** probe which managed tables hold rows (one query, LIMIT 1 per table); default true */
  readonly probeRows?: boolean;
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
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped`;

const CONSTRAINTS_QUERY = `
SELECT con.conrelid::int8 AS table_oid, con.conname::text AS name, con.contype::text AS kind,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
       CASE WHEN con.contype = 'f' THEN
         (SELECT CASE WHEN rn.nspname = $2 THEN rc.relname::text ELSE rn.nspname || '.' || rc.relname END
          FROM pg_catalog.pg_class rc JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = con.confrelid)
       END AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord) AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update
FROM pg_catalog.pg_constraint con
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u', 'f')`;

// An index is "plain" when a declaration could have produced it: btree over plain columns with
// default operator classes and ordering, no predicate, no INCLUDE. Others keep their definition.
const INDEXES_QUERY = `
SELECT i.indrelid::int8 AS table_oid, ic.relname::text AS name, i.indisunique AS is_unique,
       ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
       (i.indexprs IS NULL AND i.indpred IS NULL AND am.amname = 'btree' AND i.indnkeyatts = i.indnatts
        AND NOT i.indnullsnotdistinct
        AND 0 <> ALL (i.indkey::int2[]) AND 0 = ALL (i.indoption::int2[])
        AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS oc(oid)
                        JOIN pg_catalog.pg_opclass opc ON opc.oid = oc.oid WHERE NOT opc.opcdefault)) AS plain,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY($1::oid[])
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                  WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))`;

// One statement, one LIMIT 1 scan per table: query_to_xml runs a query built per row.
const ROWS_QUERY = `
SELECT c.relname::text AS name
FROM pg_catalog.pg_class c
WHERE c.oid = ANY($1::oid[])
  AND pg_catalog.query_to_xml(pg_catalog.format('SELECT 1 AS x FROM %I.%I LIMIT 1', $2::text, c.relname), false, true, '')::text <> ''`;

interface TableRow { oid: string; name: string }
interface ColumnRow { table_oid: string; num: number; name: string; type: string; not_null: boolean; identity: string; generated: string; default_expr: string | null }
interface ConstraintRow {
  table_oid: string;
  name: string;
  kind: string;
  columns: string[];
  ref_table: string | null;
  ref_columns: string[];
  on_delete: string;
  on_update: string;
}
interface IndexRow { table_oid: string; name: string; is_unique: boolean; columns: string[]; plain: boolean; definition: string }

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
  if (managed.length === 0) return { ir: schemaOf([]), unmanagedTables, tablesWithRows: options.probeRows === false ? null : [], queries };

  const oids = `{${managed.map((t) => t.oid).join(',')}}`;
  const [columns, constraints, indexes] = await Promise.all([
    sql.unsafe(COLUMNS_QUERY, [oids]) as unknown as Promise<ColumnRow[]>,
    sql.unsafe(CONSTRAINTS_QUERY, [oids, TABLE_SCHEMA]) as unknown as Promise<ConstraintRow[]>,
    sql.unsafe(INDEXES_QUERY, [oids]) as unknown as Promise<IndexRow[]>,
  ]);
  queries += 3;
  let tablesWithRows: string[] | null = null;
  if (options.probeRows !== false) {
    const rows = (await sql.unsafe(ROWS_QUERY, [oids, TABLE_SCHEMA])) as unknown as { name: string }[];
    queries += 1;
    tablesWithRows = rows.map((r) => r.name).sort(compareText);
  }

  const parts = new Map<string, { name: string; columns: (ColumnIR & { num: number })[]; primaryKey: ConstraintIR | null; uniques: ConstraintIR[]; indexes: IndexIR[]; foreignKeys: ForeignKeyIR[] }>();
  for (const t of managed) parts.set(String(t.oid), { name: t.name, columns: [], primaryKey: null, uniques: [], indexes: [], foreignKeys: [] });

  for (const c of columns) {
    const table = parts.get(String(c.table_oid));
    if (!table) continue;
    const identity = c.identity === 'd' ? 'by_default' : c.identity === 'a' ? 'always' : null;
    let defaultSql: string | null = null;
    if (c.default_expr !== null) defaultSql = c.generated === 's' ? `GENERATED ALWAYS AS (${c.default_expr}) STORED` : catalogDefault(c.type, c.default_expr);
    table.columns.push({ num: c.num, name: c.name, type: c.type, nullable: !c.not_null, default: defaultSql, identity });
  }
  for (const c of constraints) {
    const table = parts.get(String(c.table_oid));
    if (!table) continue;
    if (c.kind === 'p') table.primaryKey = { name: c.name, columns: c.columns };
    else if (c.kind === 'u') table.uniques.push({ name: c.name, columns: c.columns });
    else {
      table.foreignKeys.push({
        name: c.name,
        columns: c.columns,
        refTable: c.ref_table ?? '',
        refColumns: c.ref_columns,
        onDelete: ACTIONS[c.on_delete] ?? 'no_action',
        onUpdate: ACTIONS[c.on_update] ?? 'no_action',
      });
    }
  }
  for (const ix of indexes) {
    const table = parts.get(String(ix.table_oid));
    if (!table) continue;
    table.indexes.push({ name: ix.name, columns: ix.columns, unique: ix.is_unique, definition: ix.plain ? null : ix.definition });
  }

  const tables: TableIR[] = [...parts.values()].map((t) => ({
    name: t.name,
    columns: t.columns.sort((a, b) => a.num - b.num).map(({ num: _num, ...col }) => col),
    primaryKey: t.primaryKey,
    uniques: t.uniques.sort(byName),
    indexes: t.indexes.sort(byName),
    foreignKeys: t.foreignKeys.sort(byName),
  }));
  return { ir: schemaOf(tables), unmanagedTables, tablesWithRows, queries };
}
