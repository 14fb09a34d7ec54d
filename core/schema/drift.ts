import { fkSignature, indexSignature } from './diff.ts';
import { introspectSchema, type Queryable } from './introspect.ts';
import { tableList, type ConstraintIR, type ForeignKeyIR, type IndexIR, type SchemaIR, type TableIR } from './ir.ts';

/**
 * Does the live database match a declared schema exactly? Compares what the IR describes (tables,
 * columns, types, nullability, defaults, identity, collation, primary key, unique constraints and
 * their options, indexes and their validity, foreign keys and their options) for the declared
 * tables. Column order is not compared (Postgres cannot change it).
 *
 * Unmanaged objects are information, never drift: tables the declaration does not name, and
 * inside declared tables the columns, indexes, keys and CHECK / EXCLUDE constraints no release
 * declared (a DBA's additions; plans leave them alone). A table declared with `unmanaged: drift`
 * opts in to treating its unmanaged objects as drift.
 */

export type DriftKind =
  | 'missing_table'
  | 'missing_column'
  | 'extra_column'
  | 'column_type'
  | 'column_nullability'
  | 'column_default'
  | 'column_identity'
  | 'column_collation'
  | 'primary_key'
  | 'missing_unique'
  | 'extra_unique'
  | 'unique_definition'
  | 'missing_index'
  | 'extra_index'
  | 'index_definition'
  | 'index_invalid'
  | 'extra_check'
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
  /** objects inside declared tables that no release declared (information only, see module doc) */
  readonly unmanagedObjects: readonly DriftDifference[];
}

const cols = (columns: readonly string[]): string => `(${columns.join(', ')})`;
const uniqueText = (u: ConstraintIR): string => u.definition ?? cols(u.columns);
const indexText = (i: IndexIR): string => `${i.definition ?? `${i.unique ? 'unique ' : ''}${cols(i.columns)}`}${i.valid === false ? ' (INVALID)' : ''}`;
const fkText = (f: ForeignKeyIR): string => f.definition ?? `${cols(f.columns)} → ${f.refTable} ${cols(f.refColumns)} on delete ${f.onDelete} on update ${f.onUpdate}`;
const nullText = (nullable: boolean): string => (nullable ? 'nullable' : 'NOT NULL');

/** Pure comparison of a declared IR with a live one; an empty list means no drift. */
export function compareSchemas(declared: SchemaIR, live: SchemaIR): DriftDifference[] {
  return compareAll(declared, live).drift;
}

/** The objects inside declared tables that no release declared: information, not drift (see module doc). */
export function unmanagedObjects(declared: SchemaIR, live: SchemaIR): DriftDifference[] {
  return compareAll(declared, live).unmanaged;
}

function compareAll(declared: SchemaIR, live: SchemaIR): { drift: DriftDifference[]; unmanaged: DriftDifference[] } {
  const drift: DriftDifference[] = [];
  const unmanaged: DriftDifference[] = [];
  for (const want of tableList(declared)) {
    const have = live.tables[want.name];
    if (have === undefined) {
      drift.push({ kind: 'missing_table', table: want.name, object: null, expected: want.name, actual: null, message: `table ${want.name} is missing` });
      continue;
    }
    compareTable(want, have, drift, want.unmanaged === 'drift' ? drift : unmanaged);
  }
  return { drift, unmanaged };
}

function compareTable(want: TableIR, have: TableIR, out: DriftDifference[], extras: DriftDifference[]): void {
  const t = want.name;
  const push = (kind: DriftKind, object: string | null, expected: string | null, actual: string | null, message: string): void => {
    const extra = kind === 'extra_column' || kind === 'extra_unique' || kind === 'extra_index' || kind === 'extra_foreign_key' || kind === 'extra_check';
    (extra ? extras : out).push({ kind, table: t, object, expected, actual, message });
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
    if (l.collation !== c.collation) {
      push('column_collation', c.name, c.collation ?? null, l.collation ?? null, `column ${at} uses collation ${l.collation ?? 'default'}, declared ${c.collation ?? 'default'}`);
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
    else if (a === `${e} (INVALID)`) push('index_invalid', name, e, a, `index ${name} on ${t} is invalid (a failed concurrent build): it is not used and enforces nothing`);
    else push('index_definition', name, e, a, `index ${name} on ${t} is ${a}, declared ${e}`);
  }, indexSignature);
  for (const c of have.checks ?? []) push('extra_check', c.name, null, c.definition, `constraint ${c.name} ${c.definition} on ${t} is not declared`);
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
  const { drift, unmanaged } = compareAll(declared, live.ir);
  return { differences: drift, unmanagedTables: live.unmanagedTables, unmanagedObjects: unmanaged };
}

/** The report as plain lines: one per difference, then the unmanaged tables and objects as information. */
export function formatDrift(report: DriftReport): string[] {
  const lines = report.differences.map((d) => d.message);
  if (report.unmanagedTables.length > 0) lines.push(`info: unmanaged tables (not declared, left alone): ${report.unmanagedTables.join(', ')}`);
  for (const d of report.unmanagedObjects) lines.push(`info: unmanaged (left alone): ${d.message}`);
  return lines;
}
