import { CHANGE_ORDER, type Change, type ColumnDefinition } from './changes.ts';
import { compareText, tableList, type ColumnIR, type ConstraintIR, type ForeignKeyIR, type IndexIR, type SchemaIR, type TableIR } from './ir.ts';

/**
 * Declared IR + live IR (+ the previous release's IR) → ordered typed changes.
 *
 * - Tables the declaration never named are not ours: they are not in `live` (introspection reads
 *   only managed tables) and are never touched. A table is dropped only when the previous release
 *   declared it and this one does not.
 * - Renames are never guessed: a column is renamed only when its declaration lists the live name
 *   in `previousNames`. Constraints and indexes whose definition is unchanged but whose name is
 *   (for instance after a column rename) are renamed rather than rebuilt.
 * - Column order is not compared: Postgres cannot reorder columns; new columns go last.
 */
export function diffSchemas(declared: SchemaIR, live: SchemaIR, previous?: SchemaIR | null): Change[] {
  const changes: Change[] = [];
  const declaredTables = tableList(declared);
  const dropped = tableList(live).filter((t) => declared.tables[t.name] === undefined && previous?.tables[t.name] !== undefined);
  const droppedNames = new Set(dropped.map((t) => t.name));

  for (const table of dropped) {
    // keys between tables that go together would block the first DROP TABLE
    for (const fk of table.foreignKeys) {
      if (fk.refTable !== table.name && droppedNames.has(fk.refTable)) changes.push({ kind: 'drop_foreign_key', table: table.name, name: fk.name });
    }
    changes.push({ kind: 'drop_table', table: table.name });
  }

  // Renames first, for every table: a key of one table follows the renamed columns of another.
  const renames = new Map<string, Map<string, string>>();
  for (const table of declaredTables) {
    const current = live.tables[table.name];
    if (current !== undefined) renames.set(table.name, columnRenames(table, current));
  }
  for (const table of declaredTables) {
    const current = live.tables[table.name];
    if (current === undefined) createTable(table, changes);
    else diffTable(table, current, renames, changes);
  }

  const rank = new Map(CHANGE_ORDER.map((k, i) => [k, i]));
  // Array.prototype.sort is stable: within a kind, changes keep table and declaration order.
  return changes.sort((a, b) => (rank.get(a.kind) ?? 0) - (rank.get(b.kind) ?? 0));
}

function physical(c: ColumnIR): ColumnDefinition {
  return { default: c.default, identity: c.identity, name: c.name, nullable: c.nullable, type: c.type };
}

function createTable(table: TableIR, changes: Change[]): void {
  changes.push({ kind: 'create_table', table: table.name, columns: table.columns.map(physical), primaryKey: table.primaryKey, uniques: table.uniques });
  for (const index of table.indexes) changes.push({ kind: 'create_index', table: table.name, index });
  for (const fk of table.foreignKeys) changes.push({ kind: 'add_foreign_key', table: table.name, foreignKey: stripFk(fk) });
}

function stripFk({ as: _as, ...fk }: ForeignKeyIR): ForeignKeyIR {
  return fk;
}

/** Column renames the declaration asks for and the live table allows. */
function columnRenames(declared: TableIR, live: TableIR): Map<string, string> {
  const liveNames = new Set(live.columns.map((c) => c.name));
  const declaredNames = new Set(declared.columns.map((c) => c.name));
  const renames = new Map<string, string>(); // live name → declared name
  for (const col of declared.columns) {
    if (liveNames.has(col.name)) continue;
    const from = (col.previousNames ?? []).find((p) => liveNames.has(p) && !declaredNames.has(p) && !renames.has(p));
    if (from !== undefined) renames.set(from, col.name);
  }
  return renames;
}

type Renames = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** The live table as it will be once the renames (of this and of referenced tables) ran. */
function renamed(live: TableIR, renames: Renames): TableIR {
  const own = renames.get(live.name) ?? new Map<string, string>();
  const map = (cols: readonly string[], table: ReadonlyMap<string, string> | undefined = own): string[] => cols.map((c) => table?.get(c) ?? c);
  return {
    ...live,
    columns: live.columns.map((c) => ({ ...c, name: own.get(c.name) ?? c.name })),
    primaryKey: live.primaryKey && { ...live.primaryKey, columns: map(live.primaryKey.columns) },
    uniques: live.uniques.map((u) => ({ ...u, columns: map(u.columns) })),
    indexes: live.indexes.map((i) => ({ ...i, columns: map(i.columns) })),
    foreignKeys: live.foreignKeys.map((f) => ({ ...f, columns: map(f.columns), refColumns: map(f.refColumns, renames.get(f.refTable)) })),
  };
}

function diffTable(declared: TableIR, liveBefore: TableIR, renames: Renames, changes: Change[]): void {
  const t = declared.name;
  for (const [from, to] of renames.get(t) ?? []) changes.push({ kind: 'rename_column', table: t, from, to });
  const live = renamed(liveBefore, renames);

  const liveColumns = new Map(live.columns.map((c) => [c.name, c]));
  const declaredNames = new Set(declared.columns.map((c) => c.name));
  for (const col of declared.columns) {
    const current = liveColumns.get(col.name);
    if (current === undefined) changes.push({ kind: 'add_column', table: t, column: physical(col) });
    else diffColumn(t, col, current, changes);
  }
  for (const col of live.columns) if (!declaredNames.has(col.name)) changes.push({ kind: 'drop_column', table: t, column: col.name });

  diffPrimaryKey(t, declared.primaryKey, live.primaryKey, changes);
  const uniques = match(declared.uniques, live.uniques, (u) => u.columns.join(','));
  for (const u of uniques.drop) changes.push({ kind: 'drop_unique', table: t, name: u.name });
  for (const r of uniques.rename) changes.push({ kind: 'rename_constraint', table: t, ...r });
  for (const u of uniques.add) changes.push({ kind: 'add_unique', table: t, constraint: u });

  const indexes = match(declared.indexes, live.indexes, indexSignature);
  for (const i of indexes.drop) changes.push({ kind: 'drop_index', table: t, name: i.name });
  for (const r of indexes.rename) changes.push({ kind: 'rename_index', table: t, ...r });
  for (const i of indexes.add) changes.push({ kind: 'create_index', table: t, index: i });

  const fks = match(declared.foreignKeys.map(stripFk), live.foreignKeys, fkSignature);
  for (const f of fks.drop) changes.push({ kind: 'drop_foreign_key', table: t, name: f.name });
  for (const r of fks.rename) changes.push({ kind: 'rename_constraint', table: t, ...r });
  for (const f of fks.add) changes.push({ kind: 'add_foreign_key', table: t, foreignKey: f });
}

function diffColumn(t: string, want: ColumnIR, have: ColumnIR, changes: Change[]): void {
  const column = want.name;
  const typeChanged = want.type !== have.type;
  if (have.identity !== null && want.identity === null) changes.push({ kind: 'drop_identity', table: t, column });
  if (typeChanged) {
    // re-set the default after the type change: the old expression would keep a cast to the old type
    if (have.default !== null) changes.push({ kind: 'drop_default', table: t, column, from: have.default });
    changes.push({ kind: 'alter_column_type', table: t, column, from: have.type, to: want.type });
    if (want.default !== null) changes.push({ kind: 'set_default', table: t, column, from: null, to: want.default });
  } else if (want.default !== have.default) {
    if (want.default === null) changes.push({ kind: 'drop_default', table: t, column, from: have.default as string });
    else changes.push({ kind: 'set_default', table: t, column, from: have.default, to: want.default });
  }
  if (want.nullable && !have.nullable) changes.push({ kind: 'drop_not_null', table: t, column });
  if (!want.nullable && have.nullable) changes.push({ kind: 'set_not_null', table: t, column });
  if (want.identity !== null && have.identity === null) changes.push({ kind: 'add_identity', table: t, column, identity: want.identity });
  if (want.identity !== null && have.identity !== null && want.identity !== have.identity) changes.push({ kind: 'alter_identity', table: t, column, identity: want.identity });
}

function diffPrimaryKey(t: string, want: ConstraintIR | null, have: ConstraintIR | null, changes: Change[]): void {
  if (want === null && have === null) return;
  if (want !== null && have !== null && want.columns.join(',') === have.columns.join(',')) {
    if (want.name !== have.name) changes.push({ kind: 'rename_constraint', table: t, from: have.name, to: want.name });
    return;
  }
  if (have !== null) changes.push({ kind: 'drop_primary_key', table: t, name: have.name });
  if (want !== null) changes.push({ kind: 'add_primary_key', table: t, constraint: want });
}

export function indexSignature(i: IndexIR): string {
  return `${i.unique ? 'unique' : 'plain'}:${i.columns.join(',')}:${i.definition ?? ''}`;
}

export function fkSignature(f: ForeignKeyIR): string {
  return `${f.columns.join(',')}->${f.refTable}(${f.refColumns.join(',')}):${f.onDelete}:${f.onUpdate}`;
}

interface Matched<T> {
  readonly drop: T[];
  readonly add: T[];
  readonly rename: { from: string; to: string }[];
}

/**
 * Pairs declared and live items: same name and definition → nothing to do; same definition under
 * another name → rename; the rest → drop and add. A rename whose target name is still held by a
 * live item that stays (or moves itself) falls back to drop and add, so no rename ever collides.
 */
function match<T extends { readonly name: string }>(declared: readonly T[], live: readonly T[], signature: (x: T) => string): Matched<T> {
  const liveByName = new Map(live.map((x) => [x.name, x]));
  const pending: T[] = [];
  const kept = new Set<string>();
  for (const d of declared) {
    const l = liveByName.get(d.name);
    if (l !== undefined && signature(l) === signature(d)) kept.add(d.name);
    else pending.push(d);
  }
  const free = live.filter((l) => !kept.has(l.name));
  const renames: { from: string; to: string; item: T }[] = [];
  const claimed = new Set<string>();
  for (const d of pending) {
    const l = free.find((x) => !claimed.has(x.name) && signature(x) === signature(d));
    if (l !== undefined) {
      claimed.add(l.name);
      renames.push({ from: l.name, to: d.name, item: d });
    }
  }
  const movingAway = new Set(renames.map((r) => r.from));
  const valid = renames.filter((r) => !liveByName.has(r.to) || (!kept.has(r.to) && !movingAway.has(r.to)));
  const validFrom = new Set(valid.map((r) => r.from));
  const renamedTo = new Set(valid.map((r) => r.to));
  return {
    drop: free.filter((l) => !validFrom.has(l.name)).sort((a, b) => compareText(a.name, b.name)),
    add: pending.filter((d) => !renamedTo.has(d.name)),
    rename: valid.map(({ from, to }) => ({ from, to })),
  };
}
