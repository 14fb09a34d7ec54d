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
  /** live only, and only when the column does not use its type's default collation: `"C"`, `"en_US"` */
  readonly collation?: string;
}

/** A primary key or unique constraint. */
export interface ConstraintIR {
  readonly name: string;
  readonly columns: readonly string[];
  /**
   * live only, and only when the constraint is more than a declaration can express (DEFERRABLE,
   * NULLS NOT DISTINCT …): its full `pg_get_constraintdef` text, so it never equals a declared one
   */
  readonly definition?: string;
}

/** A CHECK or EXCLUDE constraint (live only: declarations cannot express them). */
export interface CheckIR {
  readonly name: string;
  /** `pg_get_constraintdef` text: `CHECK ((price > (0)::numeric)) NOT VALID` */
  readonly definition: string;
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
  /** live only, and only when the index is invalid (`indisvalid`: a failed concurrent build) */
  readonly valid?: false;
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
  /**
   * live only, and only when the key is more than a declaration can express (DEFERRABLE, NOT
   * VALID, MATCH FULL): its full `pg_get_constraintdef` text
   */
  readonly definition?: string;
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
  /** live only, and only when there are some: CHECK and EXCLUDE constraints, sorted by name */
  readonly checks?: readonly CheckIR[];
  /** declaration only: names this table had before; the diff renames instead of drop + create */
  readonly previousNames?: readonly string[];
  /**
   * declaration only: how drift treats objects inside this table that no release declared
   * (columns, indexes, keys, checks a DBA added). Absent: information, never a blocker;
   * `drift`: each one is a drift difference (the user opted in, see `unmanaged:` in YAML).
   */
  readonly unmanaged?: 'drift';
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
  return { tables: record, version: IR_VERSION };
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
  // Native JSON.stringify with a replacer that re-orders only objects whose keys are out of order:
  // plans hash IRs of thousands of tables on every reconcile, and this keeps that in milliseconds.
  return JSON.stringify(value ?? null, sortKeys);
}

function sortKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  let ordered = true;
  for (let i = 1; i < keys.length && ordered; i++) ordered = compareText(keys[i - 1] as string, keys[i] as string) < 0;
  if (ordered) return value;
  const copy: Record<string, unknown> = {};
  for (const key of keys.sort(compareText)) copy[key] = (value as Record<string, unknown>)[key];
  return copy;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Below this depth values are serialised piecewise; deeper ones (a table, a step) in one go. */
const STREAM_DEPTH = 3;
const FLUSH_AT = 1 << 16;

/**
 * `sha256Hex(canonicalJson(value))` for plain JSON data, without building the whole text: the
 * canonical JSON is fed to the hash in pieces of about a table each, which keeps hashing a schema
 * of 10,000 tables linear and its memory flat.
 */
export function canonicalSha256(value: unknown): string {
  const hash = createHash('sha256');
  let buffer = '';
  const emit = (text: string): void => {
    buffer += text;
    if (buffer.length >= FLUSH_AT) {
      hash.update(buffer);
      buffer = '';
    }
  };
  const walk = (v: unknown, depth: number): void => {
    if (depth >= STREAM_DEPTH || v === null || v === undefined || typeof v !== 'object') {
      emit(canonicalJson(v));
    } else if (Array.isArray(v)) {
      emit('[');
      v.forEach((item, i) => {
        if (i > 0) emit(',');
        walk(item, depth + 1);
      });
      emit(']');
    } else {
      const record = v as Record<string, unknown>;
      let first = true;
      emit('{');
      for (const key of Object.keys(record).sort(compareText)) {
        if (record[key] === undefined) continue;
        emit(`${first ? '' : ','}${JSON.stringify(key)}:`);
        first = false;
        walk(record[key], depth + 1);
      }
      emit('}');
    }
  };
  walk(value, 0);
  hash.update(buffer);
  return hash.digest('hex');
}

/** SHA-256 (hex) of the canonical JSON of an IR: equal schemas hash equally, whatever built them. */
export function hashSchema(ir: SchemaIR): string {
  return canonicalSha256(ir);
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
      ...(t.checks === undefined ? {} : { checks: t.checks }),
      columns: t.columns.map((c) => ({
        ...(c.collation === undefined ? {} : { collation: c.collation }),
        default: c.default,
        identity: c.identity,
        name: c.name,
        nullable: c.nullable,
        type: c.type,
      })),
      foreignKeys: t.foreignKeys.map(({ as: _as, ...fk }) => fk),
      indexes: t.indexes,
      name: t.name,
      primaryKey: t.primaryKey,
      uniques: t.uniques,
    })),
  );
}
