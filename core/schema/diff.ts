import { CHANGE_ORDER, logicalText, type Change, type ColumnDefinition } from './changes.ts';
import { identitySequenceName } from './names.ts';
import { compareText, sha256Hex, tableList, type ColumnIR, type ConstraintIR, type ForeignKeyIR, type IndexIR, type SchemaIR, type TableIR } from './ir.ts';

/**
 * Declared IR + live IR (+ the previous release's IR) → ordered typed changes.
 *
 * - Tables the declaration never named are not ours: they are not in `live` (introspection reads
 *   only managed tables) and are never touched. A table is dropped only when the previous release
 *   declared it and this one does not.
 * - Inside a managed table, only what a release declared is ever dropped: a column, index, unique
 *   constraint or foreign key is dropped only when the previous release declared it (or when the
 *   declaration wants its name for something else). What a DBA added is left alone; drift reports
 *   it as unmanaged. Without a previous release nothing inside a table is dropped.
 * - Renames are never guessed: a table or column is renamed only when its declaration lists the
 *   live name in `previousNames`. Constraints and indexes whose definition is unchanged but whose
 *   name is (for instance after a rename) are renamed rather than rebuilt; names exchanged between
 *   tables (index and key names are unique per schema) go through a temporary name.
 * - Foreign keys that a type change or a key change would break (a retyped column on either side,
 *   the unique key they rest on being rebuilt) are dropped first and added back last.
 * - Column order is not compared: Postgres cannot reorder columns; new columns go last.
 */
export function diffSchemas(declared: SchemaIR, live: SchemaIR, previous?: SchemaIR | null): Change[] {
  const changes: Change[] = [];
  const declaredTables = tableList(declared);

  // table renames (previousNames): live name → declared name
  const tableRenames = new Map<string, string>();
  for (const table of declaredTables) {
    if (live.tables[table.name] !== undefined) continue;
    const from = (table.previousNames ?? []).find((p) => live.tables[p] !== undefined && declared.tables[p] === undefined && !tableRenames.has(p));
    if (from !== undefined) tableRenames.set(from, table.name);
  }
  const dropped = tableList(live).filter((t) => declared.tables[t.name] === undefined && !tableRenames.has(t.name) && previous?.tables[t.name] !== undefined);
  const droppedNames = new Set(dropped.map((t) => t.name));

  for (const table of dropped) {
    // keys between tables that go together would block the first DROP TABLE
    for (const fk of table.foreignKeys) {
      if (fk.refTable !== table.name && droppedNames.has(fk.refTable)) changes.push({ kind: 'drop_foreign_key', table: table.name, name: fk.name, refTable: fk.refTable });
    }
    changes.push({ kind: 'drop_table', table: table.name });
  }
  for (const [from, to] of tableRenames) changes.push({ kind: 'rename_table', table: to, from });

  // The live schema as it will be once tables are renamed: what every comparison below sees.
  const tableName = (name: string): string => tableRenames.get(name) ?? name;
  const liveTables = new Map<string, TableIR>();
  for (const t of tableList(live)) {
    if (droppedNames.has(t.name)) continue;
    // copies only when a table is renamed: plans of thousands of unchanged tables stay cheap
    const moved = tableRenames.size > 0 && (tableRenames.has(t.name) || t.foreignKeys.some((f) => tableRenames.has(f.refTable)));
    liveTables.set(tableName(t.name), moved ? { ...t, name: tableName(t.name), foreignKeys: t.foreignKeys.map((f) => ({ ...f, refTable: tableName(f.refTable) })) } : t);
  }
  const previousOf = (declaredName: string): TableIR | undefined => {
    const liveName = [...tableRenames].find(([, to]) => to === declaredName)?.[0] ?? declaredName;
    return previous?.tables[liveName] ?? previous?.tables[declaredName];
  };

  // Renames first, for every table: a key of one table follows the renamed columns of another.
  const renames = new Map<string, Map<string, string>>(); // only tables with column renames
  for (const table of declaredTables) {
    const current = liveTables.get(table.name);
    if (current === undefined) continue;
    const own = columnRenames(table, current);
    if (own.size > 0) renames.set(table.name, own);
  }
  const after = new Map<string, TableIR>(); // live tables with column renames applied
  for (const [name, t] of liveTables) after.set(name, renamed(t, renames));
  for (const table of declaredTables) {
    const current = liveTables.get(table.name);
    if (current === undefined) createTable(table, changes);
    else diffTable(table, current, after.get(table.name) as TableIR, renames, previousOf(table.name) ?? null, previous !== null && previous !== undefined, changes);
  }
  for (const table of declaredTables) {
    const current = liveTables.get(table.name);
    if (current !== undefined) renameSequences(table, current, tableRenames, renames.get(table.name), changes);
  }
  recreateForeignKeys(declared, after, changes);
  refuseDanglingKeys(dropped, after, changes);

  const rank = new Map(CHANGE_ORDER.map((k, i) => [k, i]));
  // Array.prototype.sort is stable: within a kind, changes keep table and declaration order.
  const sorted = changes.sort((a, b) => (rank.get(a.kind) ?? 0) - (rank.get(b.kind) ?? 0));
  return exchangeThroughTemporaryNames(sorted, after, rank);
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
  if (renames.size === 0 || (!renames.has(live.name) && !live.foreignKeys.some((f) => renames.has(f.refTable)))) return live;
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

/** Names of everything a table declares: columns, and keys and indexes (one namespace). */
function declaredNamesOf(table: TableIR | null): { columns: Set<string>; objects: Set<string> } {
  if (table === null) return { columns: new Set(), objects: new Set() };
  const objects = new Set<string>([...table.uniques, ...table.indexes, ...table.foreignKeys].map((x) => x.name));
  if (table.primaryKey) objects.add(table.primaryKey.name);
  return { columns: new Set(table.columns.map((c) => c.name)), objects };
}

function diffTable(declared: TableIR, liveBefore: TableIR, live: TableIR, renames: Renames, previousTable: TableIR | null, hasPrevious: boolean, changes: Change[]): void {
  const t = declared.name;
  for (const [from, to] of renames.get(t) ?? []) changes.push({ kind: 'rename_column', table: t, from, to });
  // built on first use: most tables have nothing to drop
  let names: { before: ReturnType<typeof declaredNamesOf>; wanted: ReturnType<typeof declaredNamesOf> } | undefined;
  const known = (): NonNullable<typeof names> => (names ??= { before: declaredNamesOf(previousTable), wanted: declaredNamesOf(declared) });
  // a live object may go when a release declared it, or when the declaration needs its name
  const mayDrop = (name: string): boolean => known().before.objects.has(name) || known().wanted.objects.has(name);

  const liveColumns = new Map(live.columns.map((c) => [c.name, c]));
  const declaredNames = new Set(declared.columns.map((c) => c.name));
  let previousColumns: Map<string, ColumnIR> | undefined;
  const previousColumn = (name: string): ColumnIR | null => {
    if (!hasPrevious || previousTable === null) return null;
    previousColumns ??= new Map(previousTable.columns.map((c) => [c.name, c]));
    return previousColumns.get(name) ?? null;
  };
  const ownRenames = renames.get(t) ?? new Map<string, string>();
  for (const col of declared.columns) {
    const current = liveColumns.get(col.name);
    if (current === undefined) changes.push({ kind: 'add_column', table: t, column: physical(col) });
    else {
      const liveName = ownRenames.size === 0 ? col.name : ([...ownRenames].find(([, to]) => to === col.name)?.[0] ?? col.name);
      // the previous declaration matters only for logical types, which live columns do not carry
      const before = col.logicalType === undefined ? null : (previousColumn(liveName) ?? previousColumn(col.name));
      diffColumn(t, col, current, before, changes);
    }
  }
  for (const col of liveBefore.columns) {
    if (ownRenames.has(col.name) || declaredNames.has(col.name)) continue;
    if (known().before.columns.has(col.name)) changes.push({ kind: 'drop_column', table: t, column: col.name });
  }

  diffPrimaryKey(t, declared.primaryKey, live.primaryKey, changes);
  const uniques = match(declared.uniques, live.uniques, uniqueSignature, mayDrop, hasPrevious);
  for (const u of uniques.drop) changes.push({ kind: 'drop_unique', table: t, name: u.name, columns: u.columns });
  for (const r of uniques.rename) changes.push({ kind: 'rename_constraint', table: t, ...r });
  for (const u of uniques.add) changes.push({ kind: 'add_unique', table: t, constraint: u });

  const indexes = match(declared.indexes, live.indexes, indexSignature, mayDrop, hasPrevious);
  for (const i of indexes.drop) changes.push({ kind: 'drop_index', table: t, name: i.name, columns: i.columns, unique: i.unique });
  for (const r of indexes.rename) changes.push({ kind: 'rename_index', table: t, ...r });
  for (const i of indexes.add) changes.push({ kind: 'create_index', table: t, index: i });

  const fks = match(declared.foreignKeys.map(stripFk), live.foreignKeys, fkSignature, mayDrop, hasPrevious);
  for (const f of fks.drop) changes.push({ kind: 'drop_foreign_key', table: t, name: f.name, refTable: f.refTable });
  for (const r of fks.rename) changes.push({ kind: 'rename_constraint', table: t, ...r });
  for (const f of fks.add) changes.push({ kind: 'add_foreign_key', table: t, foreignKey: f });
}

function diffColumn(t: string, want: ColumnIR, have: ColumnIR, before: ColumnIR | null, changes: Change[]): void {
  const column = want.name;
  const typeChanged = want.type !== have.type;
  if (have.identity !== null && want.identity === null) changes.push({ kind: 'drop_identity', table: t, column });
  if (typeChanged) {
    // re-set the default after the type change: the old expression would keep a cast to the old type
    if (have.default !== null) changes.push({ kind: 'drop_default', table: t, column, from: have.default });
    changes.push({ kind: 'alter_column_type', table: t, column, from: have.type, to: want.type });
    if (want.default !== null) changes.push({ kind: 'set_default', table: t, column, from: null, to: want.default });
  } else {
    if (have.collation !== undefined && want.collation === undefined) changes.push({ kind: 'reset_collation', table: t, column, type: want.type, from: have.collation });
    if (want.default !== have.default) {
      if (want.default === null) changes.push({ kind: 'drop_default', table: t, column, from: have.default as string });
      else changes.push({ kind: 'set_default', table: t, column, from: have.default, to: want.default });
    }
    // a logical type the database cannot see (json ↔ array, array items): the values must fit it
    const check = before === null ? null : logicalCheck(before, want);
    if (check !== null) changes.push({ kind: 'check_values', table: t, column, ...check });
  }
  if (want.nullable && !have.nullable) changes.push({ kind: 'drop_not_null', table: t, column });
  if (!want.nullable && have.nullable) changes.push({ kind: 'set_not_null', table: t, column });
  if (want.identity !== null && have.identity === null) {
    changes.push({ kind: 'add_identity', table: t, column, identity: want.identity });
    changes.push({ kind: 'restart_identity', table: t, column });
  }
  if (want.identity !== null && have.identity !== null && want.identity !== have.identity) changes.push({ kind: 'alter_identity', table: t, column, identity: want.identity });
}

/** The check a logical type change on the same SQL type needs, or null (none, or nothing can fail). */
function logicalCheck(before: ColumnIR, want: ColumnIR): { from: string; to: string; items: string | null } | null {
  if (before.type !== want.type || before.logicalType === undefined || want.logicalType === undefined) return null;
  const was = logicalText(before.logicalType, before.items ?? null);
  const now = logicalText(want.logicalType, want.items ?? null);
  if (was === now || want.logicalType !== 'array') return null; // any JSON value is json
  return { from: was, to: want.logicalType, items: want.items ?? null };
}

/** Identity sequences follow their table and column renames, as a fresh build would name them. */
function renameSequences(declared: TableIR, live: TableIR, tableRenames: ReadonlyMap<string, string>, columns: ReadonlyMap<string, string> | undefined, changes: Change[]): void {
  const tableRenamed = [...tableRenames.values()].includes(declared.name);
  for (const col of live.columns) {
    if (col.identity === null) continue;
    const name = columns?.get(col.name) ?? col.name;
    if (!tableRenamed && name === col.name) continue;
    if (declared.columns.find((c) => c.name === name)?.identity == null) continue;
    changes.push({ kind: 'rename_sequence', table: declared.name, column: name, to: identitySequenceName(declared.name, name) });
  }
}

const keyOf = (table: string, columns: readonly string[]): string => `${table}(${[...columns].sort(compareText).join(',')})`;

/**
 * Foreign keys that would block or break a change (a type change of a column on either side, the
 * unique key they rest on being dropped and rebuilt) are dropped before it and added back after.
 * A key that cannot come back (no unique key left, column types that no longer match) refuses.
 */
function recreateForeignKeys(declared: SchemaIR, after: ReadonlyMap<string, TableIR>, changes: Change[]): void {
  const retyped = new Map<string, string>(); // table.column → new type
  const droppedKeys = new Set<string>();
  const droppedFks = new Set<string>();
  const renamedFks = new Map<string, number>(); // table:from → index of the rename
  changes.forEach((c, i) => {
    if (c.kind === 'alter_column_type') retyped.set(`${c.table}.${c.column}`, c.to);
    else if (c.kind === 'drop_unique' || c.kind === 'drop_primary_key') droppedKeys.add(keyOf(c.table, c.columns));
    else if (c.kind === 'drop_index' && c.unique) droppedKeys.add(keyOf(c.table, c.columns));
    else if (c.kind === 'drop_foreign_key') droppedFks.add(`${c.table}:${c.name}`);
    else if (c.kind === 'rename_constraint') renamedFks.set(`${c.table}:${c.from}`, i);
  });
  if (retyped.size === 0 && droppedKeys.size === 0) return;
  const typeAfter = (table: string, column: string): string | undefined =>
    retyped.get(`${table}.${column}`) ?? after.get(table)?.columns.find((c) => c.name === column)?.type ?? declared.tables[table]?.columns.find((c) => c.name === column)?.type;
  const removed = new Set<number>();
  const readd: Change[] = [];
  for (const table of after.values()) {
    for (const fk of table.foreignKeys) {
      if (droppedFks.has(`${table.name}:${fk.name}`)) continue;
      const touches =
        fk.columns.some((c) => retyped.has(`${table.name}.${c}`)) || fk.refColumns.some((c) => retyped.has(`${fk.refTable}.${c}`)) || droppedKeys.has(keyOf(fk.refTable, fk.refColumns));
      if (!touches) continue;
      changes.push({ kind: 'drop_foreign_key', table: table.name, name: fk.name, refTable: fk.refTable });
      const renameAt = renamedFks.get(`${table.name}:${fk.name}`);
      let name = fk.name;
      if (renameAt !== undefined) {
        const rename = changes[renameAt] as Extract<Change, { kind: 'rename_constraint' }>;
        removed.add(renameAt);
        name = rename.to;
      }
      const foreignKey: ForeignKeyIR = { ...fk, name };
      const refused = cannotReAdd(declared, after, foreignKey, table.name, typeAfter, droppedKeys);
      readd.push({ kind: 'add_foreign_key', table: table.name, foreignKey, ...(refused === null ? {} : { refused }) });
    }
  }
  const kept = changes.filter((_, i) => !removed.has(i));
  changes.length = 0;
  changes.push(...kept, ...readd);
}

const INTEGERS = new Set(['smallint', 'integer', 'bigint']);

function cannotReAdd(
  declared: SchemaIR,
  after: ReadonlyMap<string, TableIR>,
  fk: ForeignKeyIR,
  table: string,
  typeAfter: (table: string, column: string) => string | undefined,
  droppedKeys: ReadonlySet<string>,
): string | null {
  const target = declared.tables[fk.refTable] ?? after.get(fk.refTable);
  const want = keyOf(fk.refTable, fk.refColumns);
  const liveTarget = after.get(fk.refTable);
  const candidates = [
    ...(target?.primaryKey ? [target.primaryKey.columns] : []),
    ...(target?.uniques ?? []).map((u) => u.columns),
    ...(target?.indexes ?? []).filter((i) => i.unique && i.definition === null).map((i) => i.columns),
    // keys a DBA made on the referenced table stay, unless this plan drops them
    ...[...(liveTarget?.uniques ?? []), ...(liveTarget?.indexes ?? []).filter((i) => i.unique && i.definition === null)]
      .map((u) => u.columns)
      .filter((cols) => !droppedKeys.has(keyOf(fk.refTable, cols))),
  ];
  if (!candidates.some((cols) => keyOf(fk.refTable, cols) === want)) {
    return `foreign key ${fk.name} of ${table} needs a unique key on ${fk.refTable} (${fk.refColumns.join(', ')}), which this plan removes; declare one, or drop the foreign key first`;
  }
  for (const [i, column] of fk.columns.entries()) {
    const own = typeAfter(table, column);
    const ref = typeAfter(fk.refTable, fk.refColumns[i] ?? '');
    if (own !== undefined && ref !== undefined && own !== ref && !(INTEGERS.has(own) && INTEGERS.has(ref))) {
      return `foreign key ${fk.name} of ${table} would join ${table}.${column} (${own}) to ${fk.refTable}.${fk.refColumns[i]} (${ref}), which Postgres refuses; change both columns to the same type`;
    }
  }
  return null;
}

/** A dropped table that a remaining foreign key (one no release declared) still references cannot go. */
function refuseDanglingKeys(dropped: readonly TableIR[], after: ReadonlyMap<string, TableIR>, changes: Change[]): void {
  if (dropped.length === 0) return;
  const droppedFks = new Set(changes.flatMap((c) => (c.kind === 'drop_foreign_key' ? [`${c.table}:${c.name}`] : [])));
  changes.forEach((c, i) => {
    if (c.kind !== 'drop_table') return;
    const holders = [...after.values()].flatMap((t) => t.foreignKeys.filter((f) => f.refTable === c.table && !droppedFks.has(`${t.name}:${f.name}`)).map((f) => `${f.name} of ${t.name}`));
    if (holders.length > 0) changes[i] = { ...c, refused: `foreign key ${holders.join(', ')} (not declared by any release) still references ${c.table}; drop it yourself first` };
  });
}

/**
 * Index and key names are unique per schema: a rename onto a name another rename frees later
 * (names exchanged between tables) first moves to a temporary name, then to its own after every
 * other rename ran.
 */
function exchangeThroughTemporaryNames(changes: Change[], after: ReadonlyMap<string, TableIR>, rank: ReadonlyMap<string, number>): Change[] {
  const renames = changes.filter((c): c is Extract<Change, { kind: 'rename_constraint' | 'rename_index' }> => c.kind === 'rename_constraint' || c.kind === 'rename_index');
  if (renames.length < 2) return changes;
  const relationBacked = (table: string, name: string): boolean => {
    const t = after.get(table);
    return t !== undefined && (t.primaryKey?.name === name || t.uniques.some((u) => u.name === name) || t.indexes.some((i) => i.name === name));
  };
  // the namespace a name lives in: the schema for index-backed names, the table for the others
  const order = renames.map((r) => {
    const space = r.kind === 'rename_index' || relationBacked(r.table, r.from) ? 'schema' : r.table;
    return { r, from: `${space}:${r.from}`, to: `${space}:${r.to}` };
  });
  const freedLater = new Map<string, number>(order.map((o, i) => [o.from, i]));
  const phaseTwo: Change[] = [];
  const replaced = new Map<Change, Change>();
  order.forEach((o, i) => {
    const at = freedLater.get(o.to);
    if (at === undefined || at <= i) return;
    const temporary = `stk_tmp_${sha256Hex(`${o.r.table}.${o.r.from}.${o.r.to}`).slice(0, 12)}`;
    replaced.set(o.r, { ...o.r, to: temporary });
    phaseTwo.push({ ...o.r, from: temporary });
  });
  if (phaseTwo.length === 0) return changes;
  const out = changes.map((c) => replaced.get(c) ?? c);
  const cut = rank.get('rename_index') ?? 0;
  const position = out.findIndex((c) => (rank.get(c.kind) ?? 0) > cut);
  out.splice(position < 0 ? out.length : position, 0, ...phaseTwo);
  return out;
}

function diffPrimaryKey(t: string, want: ConstraintIR | null, have: ConstraintIR | null, changes: Change[]): void {
  if (want === null && have === null) return;
  if (want !== null && have !== null && uniqueSignature(want) === uniqueSignature(have)) {
    if (want.name !== have.name) changes.push({ kind: 'rename_constraint', table: t, from: have.name, to: want.name });
    return;
  }
  if (have !== null) changes.push({ kind: 'drop_primary_key', table: t, name: have.name, columns: have.columns });
  if (want !== null) changes.push({ kind: 'add_primary_key', table: t, constraint: want });
}

export function uniqueSignature(u: ConstraintIR): string {
  return `${u.columns.join(',')}:${u.definition ?? ''}`;
}

export function indexSignature(i: IndexIR): string {
  return `${i.unique ? 'unique' : 'plain'}:${i.columns.join(',')}:${i.definition ?? ''}${i.valid === false ? ':invalid' : ''}`;
}

export function fkSignature(f: ForeignKeyIR): string {
  return `${f.columns.join(',')}->${f.refTable}(${f.refColumns.join(',')}):${f.onDelete}:${f.onUpdate}:${f.definition ?? ''}`;
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
function match<T extends { readonly name: string }>(declared: readonly T[], live: readonly T[], signature: (x: T) => string, mayDrop: (name: string) => boolean, hasPrevious: boolean): Matched<T> {
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
    // once there is a release, only what one declared is renamed: an object a DBA made with the
    // same definition stays theirs (without one, every live object is taken as declared)
    const l = free.find((x) => !claimed.has(x.name) && (!hasPrevious || mayDrop(x.name)) && signature(x) === signature(d));
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
    // what no release declared stays, unless the declaration needs its name
    drop: free.filter((l) => !validFrom.has(l.name) && mayDrop(l.name)).sort((a, b) => compareText(a.name, b.name)),
    add: pending.filter((d) => !renamedTo.has(d.name)),
    rename: valid.map(({ from, to }) => ({ from, to })),
  };
}
