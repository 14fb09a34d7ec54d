import { stringify } from 'yaml';

/**
 * The oracle's own model of a declaration: what a user writes in `schema/*.yaml`, with every table
 * and column carrying a stable `uid` so an edit (a rename, a type change) can be followed from v1 to
 * v2 — by references, indexes and hand-made objects alike. `renderYaml` turns it into the file the
 * engine parses; nothing here imports the engine.
 */

export type ScalarType = 'string' | 'int' | 'bigint' | 'float' | 'decimal' | 'boolean' | 'json' | 'timestamp' | 'bytes';
export type ItemType = ScalarType;
export type IdGenerate = 'ulid' | 'uuid_v4' | 'uuid_v7' | 'nanoid' | 'auto_increment' | 'client';
export type Action = 'no_action' | 'restrict' | 'cascade' | 'set_null' | 'set_default';
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** `string`, `decimal(12,2)`, `array` … as written in YAML. */
export type TypeText = string;

export interface ReferenceModel {
  readonly tableUid: number;
  /** uid of the referenced column; the table's id uid for the id */
  readonly columnUid: number;
  readonly onDelete: Action;
  readonly onUpdate: Action;
}

export interface ColumnModel {
  readonly uid: number;
  readonly name: string;
  readonly type: TypeText;
  readonly items?: ItemType;
  readonly nullable: boolean;
  readonly unique: boolean;
  /** undefined: no default */
  readonly default?: JsonValue;
  readonly references?: ReferenceModel;
  readonly previousNames?: readonly string[];
}

export interface IdModel {
  readonly uid: number;
  readonly name: string;
  readonly generate: IdGenerate;
  readonly previousNames?: readonly string[];
}

export interface IndexModel {
  readonly columnUids: readonly number[];
  readonly unique: boolean;
  /** undefined: the engine's default name */
  readonly name?: string;
}

export interface TableModel {
  readonly uid: number;
  readonly name: string;
  readonly id: IdModel;
  readonly columns: readonly ColumnModel[];
  readonly indexes: readonly IndexModel[];
  /** table-level previousNames (table renames); only rendered when the engine supports them */
  readonly previousNames?: readonly string[];
}

export interface DeclarationModel {
  readonly tables: readonly TableModel[];
}

export function baseType(type: TypeText): string {
  return type.startsWith('decimal') ? 'decimal' : type;
}

/** [precision, scale] of `decimal(p,s)`; null for a plain `decimal` or another type. */
export function decimalOf(type: TypeText): [number, number] | null {
  const m = /^decimal\((\d+),(\d+)\)$/.exec(type);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The Postgres type a logical type becomes (for the referencing column's type rule). */
export function physicalType(type: TypeText): string {
  const d = decimalOf(type);
  if (d) return `numeric(${d[0]},${d[1]})`;
  const map: Record<string, string> = {
    string: 'text', int: 'integer', bigint: 'bigint', float: 'double precision', decimal: 'numeric', boolean: 'boolean',
    json: 'jsonb', array: 'jsonb', timestamp: 'timestamp with time zone', bytes: 'bytea',
  };
  return map[type] ?? type;
}

export const idType = (generate: IdGenerate): TypeText => (generate === 'auto_increment' ? 'bigint' : 'string');

export interface ColumnRef {
  readonly table: TableModel;
  /** undefined for the id column */
  readonly column: ColumnModel | undefined;
  readonly name: string;
  readonly type: TypeText;
}

export function tableByUid(model: DeclarationModel, uid: number): TableModel | undefined {
  return model.tables.find((t) => t.uid === uid);
}

/** The column (or id) with this uid in a table. */
export function columnByUid(table: TableModel, uid: number): ColumnRef | undefined {
  if (table.id.uid === uid) return { table, column: undefined, name: table.id.name, type: idType(table.id.generate) };
  const column = table.columns.find((c) => c.uid === uid);
  return column === undefined ? undefined : { table, column, name: column.name, type: column.type };
}

/** Whether a reference may point at this column: the id, a unique column, or a one-column unique index. */
export function isReferenceable(table: TableModel, uid: number): boolean {
  if (table.id.uid === uid) return true;
  if (table.columns.some((c) => c.uid === uid && c.unique)) return true;
  return table.indexes.some((ix) => ix.unique && ix.columnUids.length === 1 && ix.columnUids[0] === uid);
}

/** The file a user would write: one `schema/*.yaml` holding every table. */
export function renderYaml(model: DeclarationModel): string {
  const tables: Record<string, unknown> = {};
  for (const t of model.tables) {
    const table: Record<string, unknown> = {};
    if (t.previousNames?.length) table.previousNames = [...t.previousNames];
    const id: Record<string, unknown> = { name: t.id.name, generate: t.id.generate };
    if (t.id.previousNames?.length) id.previousNames = [...t.id.previousNames];
    table.id = id;
    if (t.columns.length > 0) {
      const columns: Record<string, unknown> = {};
      for (const c of t.columns) {
        const col: Record<string, unknown> = { type: c.type };
        if (c.items !== undefined) col.items = c.items;
        col.nullable = c.nullable;
        if (c.unique) col.unique = true;
        if (c.default !== undefined) col.default = c.default;
        if (c.references) {
          const target = tableByUid(model, c.references.tableUid);
          const column = target && columnByUid(target, c.references.columnUid);
          if (!target || !column) throw new Error(`oracle model: ${t.name}.${c.name} references a missing table or column`);
          col.references = { table: target.name, column: column.name, onDelete: c.references.onDelete, onUpdate: c.references.onUpdate };
        }
        if (c.previousNames?.length) col.previousNames = [...c.previousNames];
        columns[c.name] = col;
      }
      table.columns = columns;
    }
    if (t.indexes.length > 0) {
      table.indexes = t.indexes.map((ix) => {
        const names = ix.columnUids.map((uid) => {
          const ref = columnByUid(t, uid);
          if (!ref) throw new Error(`oracle model: an index of ${t.name} names a missing column`);
          return ref.name;
        });
        return { columns: names, ...(ix.unique ? { unique: true } : {}), ...(ix.name === undefined ? {} : { name: ix.name }) };
      });
    }
    tables[t.name] = table;
  }
  return stringify({ version: 1, tables }, { lineWidth: 0 });
}
