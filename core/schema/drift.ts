import { fkSignature, indexSignature } from './diff.ts';
import { introspectSchema, type Queryable } from './introspect.ts';
import { tableList, type ConstraintIR, type ForeignKeyIR, type IndexIR, type SchemaIR, type TableIR } from './ir.ts';

/**
 * Does the live database match a declared schema exactly? Compares what the IR describes (tables,
 * columns, types, nullability, defaults, identity, primary key, unique constraints, indexes,
 * foreign keys) for the declared tables. Column order is not compared (Postgres cannot change
 * it). Tables the declaration does not name are listed as unmanaged information, never as drift.
 */

export type DriftKind =
  | 'missing_table'
  | 'missing_column'
  | 'extra_column'
  | 'column_type'
  | 'column_nullability'
  | 'column_default'
  | 'column_identity'
  | 'primary_key'
  | 'missing_unique'
  | 'extra_unique'
  | 'unique_definition'
  | 'missing_index'
  | 'extra_index'
  | 'index_definition'
  | 'missing_foreign_key'
  | 'extra_foreign_key'
  | 'foreign_key_definition';

export interface DriftDifference {
  readonly kind: DriftKind;
  readonly table: string;
  /** the column, constraint or index concerned */
  readonly object: string | null;
  /** declared value, as text */
  readonly expected: string | null;
  /** live value, as text */
  readonly actual: string | null;
  /** one human-readable line */
  readonly message: string;
}

export interface DriftReport {
  /** empty when the database matches */
  readonly differences: readonly DriftDifference[];
  /** tables in the database that the declaration does not name (information only) */
  readonly unmanagedTables: readonly string[];
}

const cols = (columns: readonly string[]): string => `(${columns.join(', ')})`;
const uniqueText = (u: ConstraintIR): string => cols(u.columns);
const indexText = (i: IndexIR): string => i.definition ?? `${i.unique ? 'unique ' : ''}${cols(i.columns)}`;
const fkText = (f: ForeignKeyIR): string => `${cols(f.columns)} → ${f.refTable} ${cols(f.refColumns)} on delete ${f.onDelete} on update ${f.onUpdate}`;
const nullText = (nullable: boolean): string => (nullable ? 'nullable' : 'NOT NULL');

/** Pure comparison of a declared IR with a live one; an empty list means no drift. */
export function compareSchemas(declared: SchemaIR, live: SchemaIR): DriftDifference[] {
  const out: DriftDifference[] = [];
  for (const want of tableList(declared)) {
    const have = live.tables[want.name];
    if (have === undefined) {
      out.push({ kind: 'missing_table', table: want.name, object: null, expected: want.name, actual: null, message: `table ${want.name} is missing` });
      continue;
    }
    compareTable(want, have, out);
  }
  return out;
}

function compareTable(want: TableIR, have: TableIR, out: DriftDifference[]): void {
  const t = want.name;
  const push = (kind: DriftKind, object: string | null, expected: string | null, actual: string | null, message: string): void => {
    out.push({ kind, table: t, object, expected, actual, message });
  };
  const liveColumns = new Map(have.columns.map((c) => [c.name, c]));
  const declaredNames = new Set(want.columns.map((c) => c.name));
  for (const c of want.columns) {
    const l = liveColumns.get(c.name);
    const at = `${t}.${c.name}`;
    if (l === undefined) {
      push('missing_column', c.name, c.type, null, `column ${at} is missing`);
      continue;
    }
    if (l.type !== c.type) push('column_type', c.name, c.type, l.type, `column ${at} has type ${l.type}, declared ${c.type}`);
    if (l.nullable !== c.nullable) push('column_nullability', c.name, nullText(c.nullable), nullText(l.nullable), `column ${at} is ${nullText(l.nullable)}, declared ${nullText(c.nullable)}`);
    if (l.default !== c.default) {
      push('column_default', c.name, c.default, l.default, `column ${at} has ${l.default === null ? 'no default' : `default ${l.default}`}, declared ${c.default === null ? 'no default' : c.default}`);
    }
    if (l.identity !== c.identity) {
      const text = (i: string | null): string => (i === null ? 'not an identity' : `identity generated ${i.replace('_', ' ')}`);
      push('column_identity', c.name, c.identity, l.identity, `column ${at} is ${text(l.identity)}, declared ${text(c.identity)}`);
    }
  }
  for (const l of have.columns) if (!declaredNames.has(l.name)) push('extra_column', l.name, null, l.type, `column ${t}.${l.name} (${l.type}) exists but is not declared`);

  const pkText = (p: ConstraintIR | null): string | null => (p === null ? null : `${p.name} ${cols(p.columns)}`);
  if (pkText(want.primaryKey) !== pkText(have.primaryKey)) {
    push('primary_key', want.primaryKey?.name ?? have.primaryKey?.name ?? null, pkText(want.primaryKey), pkText(have.primaryKey),
      `primary key of ${t} is ${pkText(have.primaryKey) ?? 'missing'}, declared ${pkText(want.primaryKey) ?? 'none'}`);
  }

  compareNamed(want.uniques, have.uniques, uniqueText, (kind, name, e, a) => {
    if (kind === 'missing') push('missing_unique', name, e, null, `unique constraint ${name} ${e} on ${t} is missing`);
    else if (kind === 'extra') push('extra_unique', name, null, a, `unique constraint ${name} ${a} on ${t} is not declared`);
    else push('unique_definition', name, e, a, `unique constraint ${name} on ${t} is ${a}, declared ${e}`);
  });
  compareNamed(want.indexes, have.indexes, indexText, (kind, name, e, a) => {
    if (kind === 'missing') push('missing_index', name, e, null, `index ${name} ${e} on ${t} is missing`);
    else if (kind === 'extra') push('extra_index', name, null, a, `index ${name} ${a} on ${t} is not declared`);
    else push('index_definition', name, e, a, `index ${name} on ${t} is ${a}, declared ${e}`);
  }, indexSignature);
  compareNamed(want.foreignKeys, have.foreignKeys, fkText, (kind, name, e, a) => {
    if (kind === 'missing') push('missing_foreign_key', name, e, null, `foreign key ${name} ${e} on ${t} is missing`);
    else if (kind === 'extra') push('extra_foreign_key', name, null, a, `foreign key ${name} ${a} on ${t} is not declared`);
    else push('foreign_key_definition', name, e, a, `foreign key ${name} on ${t} is ${a}, declared ${e}`);
  }, fkSignature);
}

function compareNamed<T extends { readonly name: string }>(
  want: readonly T[],
  have: readonly T[],
  text: (x: T) => string,
  report: (kind: 'missing' | 'extra' | 'different', name: string, expected: string | null, actual: string | null) => void,
  signature: (x: T) => string = text,
): void {
  const live = new Map(have.map((x) => [x.name, x]));
  const declared = new Set(want.map((x) => x.name));
  for (const w of want) {
    const h = live.get(w.name);
    if (h === undefined) report('missing', w.name, text(w), null);
    else if (signature(h) !== signature(w)) report('different', w.name, text(w), text(h));
  }
  for (const h of have) if (!declared.has(h.name)) report('extra', h.name, null, text(h));
}

/** Introspects the declared tables of one database and compares them (see module doc). */
export async function checkDrift(sql: Queryable, declared: SchemaIR): Promise<DriftReport> {
  const live = await introspectSchema(sql, { managedTables: Object.keys(declared.tables) });
  return { differences: compareSchemas(declared, live.ir), unmanagedTables: live.unmanagedTables };
}

/** The report as plain lines: one per difference, then the unmanaged tables as information. */
export function formatDrift(report: DriftReport): string[] {
  const lines = report.differences.map((d) => d.message);
  if (report.unmanagedTables.length > 0) lines.push(`info: unmanaged tables (not declared, left alone): ${report.unmanagedTables.join(', ')}`);
  return lines;
}
