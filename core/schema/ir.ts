import { createHash } from 'node:crypto';

/**
 * The intermediate representation of one connection's schema. The same shape describes a declared
 * schema (from `schema/*.yaml`) and a live one (from the catalog), so diff and drift compare like
 * with like. It is plain JSON: it is stored inside a Release object and compared later, so every
 * absent value is an explicit `null` and `canonicalJson` gives it one byte-exact form.
 *
 * Physical fields (what Postgres stores) are compared by the diff and the drift check. Fields marked
 * "declaration only" carry intent the database cannot hold (id policy, array item type, relation
 * names, previous column names); introspection never sets them and comparisons ignore them.
 */

export const IR_VERSION = 1;

/** How the data plane generates a row id. Only `auto_increment` involves the database. */
export type IdGenerate = 'ulid' | 'uuid_v4' | 'uuid_v7' | 'nanoid' | 'auto_increment' | 'client';
export const ID_GENERATORS: readonly IdGenerate[] = ['ulid', 'uuid_v4', 'uuid_v7', 'nanoid', 'auto_increment', 'client'];

export type ReferentialAction = 'no_action' | 'restrict' | 'cascade' | 'set_null' | 'set_default';
export const REFERENTIAL_ACTIONS: readonly ReferentialAction[] = ['no_action', 'restrict', 'cascade', 'set_null', 'set_default'];

export type Identity = 'by_default' | 'always';

export interface ColumnIR {
  readonly name: string;
  /** SQL type exactly as Postgres' `format_type` prints it: `text`, `numeric(12,2)`, `timestamp with time zone` */
  readonly type: string;
  readonly nullable: boolean;
  /** canonical default expression (see `defaults.ts`), or null */
  readonly default: string | null;
  readonly identity: Identity | null;
  /** declaration only: the type as written in YAML (`string`, `decimal(12,2)`, `array`) */
  readonly logicalType?: string;
  /** declaration only: element type of an `array` column */
  readonly items?: string;
  /** declaration only: names this column had before; the diff renames instead of drop + add */
  readonly previousNames?: readonly string[];
}

/** A primary key or unique constraint. */
export interface ConstraintIR {
  readonly name: string;
  readonly columns: readonly string[];
}

export interface IndexIR {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
  /**
   * null for a plain btree index over plain columns (all a declaration can express); otherwise the
   * full `pg_get_indexdef` text, so an index we cannot describe never compares equal to a declared one.
   */
  readonly definition: string | null;
}

export interface ForeignKeyIR {
  readonly name: string;
  readonly columns: readonly string[];
  /** table in `public`, or `schema.table` for a table elsewhere */
  readonly refTable: string;
  readonly refColumns: readonly string[];
  readonly onDelete: ReferentialAction;
  readonly onUpdate: ReferentialAction;
  /** declaration only: the relation name the data plane uses (`as:` in YAML) */
  readonly as?: string;
}

export interface TableIR {
  readonly name: string;
  /** in declaration order (live: attribute order); comparisons match columns by name */
  readonly columns: readonly ColumnIR[];
  readonly primaryKey: ConstraintIR | null;
  /** sorted by name */
  readonly uniques: readonly ConstraintIR[];
  /** sorted by name; indexes that back a primary key or unique constraint are not listed here */
  readonly indexes: readonly IndexIR[];
  /** sorted by name */
  readonly foreignKeys: readonly ForeignKeyIR[];
  /** declaration only: the id column and how the data plane generates its values */
  readonly id?: { readonly column: string; readonly generate: IdGenerate };
}

export interface SchemaIR {
  readonly version: typeof IR_VERSION;
  /** keyed by table name, keys in sorted order */
  readonly tables: Readonly<Record<string, TableIR>>;
}

/** Builds a SchemaIR with its tables keyed and ordered by name. */
export function schemaOf(tables: Iterable<TableIR>): SchemaIR {
  const sorted = [...tables].sort((a, b) => compareText(a.name, b.name));
  const record: Record<string, TableIR> = {};
  for (const t of sorted) record[t.name] = t;
  return { version: IR_VERSION, tables: record };
}

export function tableList(ir: SchemaIR): TableIR[] {
  return Object.keys(ir.tables)
    .sort(compareText)
    .map((name) => ir.tables[name] as TableIR);
}

/** Code-point order, independent of locale: plans must be byte-identical everywhere. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** JSON with object keys sorted at every depth and `undefined` members left out. */
export function canonicalJson(value: unknown): string {
  // Plans hash IRs of thousands of tables on every reconcile: keep this one linear pass of string
  // concatenation (V8 ropes), without intermediate arrays.
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort(compareText);
  let out = '{';
  for (const key of keys) {
    const member = record[key];
    if (member === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${out}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** SHA-256 (hex) of the canonical JSON of an IR: equal schemas hash equally, whatever built them. */
export function hashSchema(ir: SchemaIR): string {
  return sha256Hex(canonicalJson(ir));
}

/** The IR restricted to the given tables (those it has). */
export function pickTables(ir: SchemaIR, names: Iterable<string>): SchemaIR {
  const wanted = new Set(names);
  return schemaOf(tableList(ir).filter((t) => wanted.has(t.name)));
}

/** Drops declaration-only fields: what the database can hold of this schema. */
export function physicalSchema(ir: SchemaIR): SchemaIR {
  return schemaOf(
    tableList(ir).map((t) => ({
      name: t.name,
      columns: t.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, default: c.default, identity: c.identity })),
      primaryKey: t.primaryKey,
      uniques: t.uniques,
      indexes: t.indexes,
      foreignKeys: t.foreignKeys.map(({ as: _as, ...fk }) => fk),
    })),
  );
}
