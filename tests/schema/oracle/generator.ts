import fc from 'fast-check';
import {
  baseType,
  columnByUid,
  decimalOf,
  idType,
  isReferenceable,
  physicalType,
  renderYaml,
  tableByUid,
  type Action,
  type ColumnModel,
  type DeclarationModel,
  type IdGenerate,
  type IndexModel,
  type ItemType,
  type JsonValue,
  type ReferenceModel,
  type TableModel,
  type TypeText,
} from './model.ts';

/**
 * The generator: a recipe of small numbers and flags (what fast-check draws and shrinks) becomes,
 * deterministically, a pair of valid declarations v1 → v2, rows for v1, and hand-made objects a DBA
 * adds to the managed tables. Every kind of edit and of hand-made object has a switch, so classes the
 * engine still fails on can be kept out of a CI run while their named cases wait for the fix.
 */

/** Edits from v1 to v2. */
export const EDIT_KINDS = [
  'addColumn',
  /** a NOT NULL column without a default, on tables that hold rows */
  'addRequiredColumn',
  'dropColumn',
  'renameColumn',
  /** type changes every generated value survives (int → bigint, decimal widening, anything → string …) */
  'typeSafe',
  /** any other type change (string → int, boolean → bigint, scale narrowing …) */
  'typeUnsafe',
  'setNotNull',
  'dropNotNull',
  'setDefault',
  'dropDefault',
  'addUnique',
  'dropUnique',
  /** `unique: true` on a column ↔ a one-column unique index */
  'uniqueForm',
  'addIndex',
  'dropIndex',
  'renameIndex',
  'changeIndex',
  /** two indexes of different tables exchange their names */
  'exchangeIndexNames',
  'addReference',
  'dropReference',
  'changeReferenceActions',
  /** another text id policy (ulid → uuid_v7 …): no physical change */
  'changeIdPolicy',
  /** an auto_increment id becomes a text id: the id's type changes */
  'retypeId',
  /** a text id becomes auto_increment: its identity must continue after the ids the rows hold */
  'becomeIdentity',
  /** a text id gets a new name (id.previousNames) */
  'renameId',
  /** an auto_increment id gets a new name: its identity sequence keeps the old one */
  'renameIdentity',
  'addTable',
  /** a new table named like the identity sequence of an auto_increment table (`books_id_seq`) */
  'addTableNamedLikeSequence',
  'dropTable',
  /** table-level previousNames (only when the engine supports them) */
  'renameTable',
] as const;
export type EditKind = (typeof EDIT_KINDS)[number];

/** Objects a DBA adds by hand to managed tables after v1 is applied. */
export const HANDMADE_KINDS = [
  'handIndex',
  'handColumn',
  /** a CHECK that type-checks whatever the column's type (num_nulls) */
  'handCheck',
  /** a CHECK that only type-checks on text (length(col)), on a text column */
  'handCheckText',
  'handUnique',
  /** a view over one column of a managed table */
  'handView',
] as const;
export type HandmadeKind = (typeof HANDMADE_KINDS)[number];

/**
 * Modifiers:
 * - `typeUnderForeignKey`: type changes (and id retypes) may hit columns a foreign key references
 *   or holds; the referencing columns follow the new type.
 * - `uniqueUnderForeignKey`: the form of a unique key that a foreign key depends on may change.
 * - `rowConflicts`: rows may hold NULLs, duplicates and values that later edits cannot keep (a
 *   new NOT NULL, a new unique key or foreign key over existing data). Off: rows are chosen so
 *   that every generated v2 can hold them, so a failing apply is the engine's doing.
 */
export const MODIFIERS = ['typeUnderForeignKey', 'uniqueUnderForeignKey', 'rowConflicts'] as const;
export type Modifier = (typeof MODIFIERS)[number];

export type Switch = EditKind | HandmadeKind | Modifier;
export const ALL_SWITCHES: readonly Switch[] = [...EDIT_KINDS, ...HANDMADE_KINDS, ...MODIFIERS];

export interface ColumnRecipe {
  readonly type: number;
  readonly precision: number;
  readonly scale: number;
  readonly items: number;
  readonly nullable: boolean;
  readonly unique: boolean;
  readonly defaultPick: number;
  readonly ref: { readonly table: number; readonly column: number; readonly onDelete: number; readonly onUpdate: number } | null;
}

export interface IndexRecipe {
  readonly columns: readonly number[];
  readonly unique: boolean;
  readonly named: boolean;
}

export interface TableRecipe {
  readonly idPolicy: number;
  readonly idName: number;
  readonly columns: readonly ColumnRecipe[];
  readonly indexes: readonly IndexRecipe[];
}

export interface EditRecipe {
  readonly kind: EditKind;
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

export interface HandmadeRecipe {
  readonly kind: HandmadeKind;
  readonly a: number;
  readonly b: number;
}

export interface PairRecipe {
  readonly tables: readonly TableRecipe[];
  readonly edits: readonly EditRecipe[];
  /** rows per table (cycled over the tables) */
  readonly rows: readonly number[];
  readonly handmade: readonly HandmadeRecipe[];
}

/** What one run of the oracle executes: plain text, so a named case is just this, written down. */
export interface Pair {
  readonly v1: string;
  readonly v2: string;
  /** INSERTs run after v1 is applied */
  readonly rows: readonly string[];
  /** hand-made DDL on the v1 database, after the rows */
  readonly handmade: readonly string[];
  /** the same hand-made objects as they read after v2 (renames followed), for the fresh build; those that no longer make sense are left out */
  readonly handmadeAfter: readonly string[];
  /** table names of v2 the engine may rightly reserve (an identity sequence's name): a validation error naming one is a refusal */
  readonly reservedNames?: readonly string[];
  /** data v2 keeps: tables that stay (perhaps renamed) and their columns whose type stays, as [v1 name, v2 name] */
  readonly kept?: readonly KeptTable[];
}

export interface KeptTable {
  readonly before: string;
  readonly after: string;
  /** the id column [v1 name, v2 name]: rows are compared in id order (as text, whatever its type) */
  readonly id: readonly [string, string];
  readonly columns: readonly (readonly [string, string])[];
}

/** Tables and columns of v1 that v2 keeps with the same physical type: their rows and values must survive. */
function keptData(v1: DeclarationModel, v2: DeclarationModel): KeptTable[] {
  const out: KeptTable[] = [];
  for (const t1 of v1.tables) {
    const t2 = tableByUid(v2, t1.uid);
    if (!t2) continue;
    const columns: [string, string][] = [];
    for (const uid of [t1.id.uid, ...t1.columns.map((c) => c.uid)]) {
      const a = columnByUid(t1, uid);
      const b = columnByUid(t2, uid);
      if (a && b && physicalType(a.type) === physicalType(b.type)) columns.push([a.name, b.name]);
    }
    out.push({ before: t1.name, after: t2.name, id: [t1.id.name, t2.id.name], columns });
  }
  return out;
}

export interface GeneratedPair extends Pair {
  readonly model1: DeclarationModel;
  readonly model2: DeclarationModel;
  /** the edit kinds that changed something (for the outcome counts) */
  readonly applied: readonly EditKind[];
}

// ---------------------------------------------------------------------------------------------
// arbitraries

const nat = (max: number): fc.Arbitrary<number> => fc.nat({ max });

const columnRecipe: fc.Arbitrary<ColumnRecipe> = fc.record({
  type: nat(30),
  precision: nat(30),
  scale: nat(30),
  items: nat(30),
  nullable: fc.boolean(),
  unique: nat(3).map((n) => n === 0),
  defaultPick: nat(30),
  ref: fc.option(fc.record({ table: nat(10), column: nat(10), onDelete: nat(10), onUpdate: nat(10) }), { freq: 3, nil: null }),
});

const indexRecipe: fc.Arbitrary<IndexRecipe> = fc.record({
  columns: fc.array(nat(10), { minLength: 1, maxLength: 2 }),
  unique: fc.boolean(),
  named: fc.boolean(),
});

const tableRecipe: fc.Arbitrary<TableRecipe> = fc.record({
  idPolicy: nat(10),
  idName: nat(10),
  columns: fc.array(columnRecipe, { maxLength: 5 }),
  indexes: fc.array(indexRecipe, { maxLength: 2 }),
});

/** The arbitrary of pair recipes with only the enabled switches. */
export function pairRecipe(enabled: ReadonlySet<Switch>): fc.Arbitrary<PairRecipe> {
  const edits = EDIT_KINDS.filter((k) => enabled.has(k));
  const handmade = HANDMADE_KINDS.filter((k) => enabled.has(k));
  const edit: fc.Arbitrary<EditRecipe> | null = edits.length === 0 ? null : fc.record({ kind: fc.constantFrom(...edits), a: nat(30), b: nat(30), c: nat(30) });
  const hand: fc.Arbitrary<HandmadeRecipe> | null = handmade.length === 0 ? null : fc.record({ kind: fc.constantFrom(...handmade), a: nat(30), b: nat(30) });
  return fc.record({
    tables: fc.array(tableRecipe, { minLength: 1, maxLength: 4 }),
    edits: edit === null ? fc.constant([]) : fc.array(edit, { minLength: 1, maxLength: 4 }),
    rows: fc.array(nat(3), { minLength: 1, maxLength: 4 }),
    handmade: hand === null ? fc.constant([]) : fc.array(hand, { maxLength: 3 }),
  });
}

// ---------------------------------------------------------------------------------------------
// names and values

const TABLE_NAMES = ['authors', 'books', 'tags', 'orders', 'events', 'notes', 'users', 'invoices', 'shelves', 'reviews'];
const COLUMN_NAMES = ['title', 'pages', 'price', 'flag', 'body', 'meta', 'seen_at', 'blob', 'score', 'code', 'labels', 'note', 'qty', 'amount'];
const ID_NAMES = ['id', 'pk', 'key_id'];
const ID_POLICIES: readonly IdGenerate[] = ['ulid', 'auto_increment', 'uuid_v4', 'uuid_v7', 'nanoid', 'client'];
const TEXT_POLICIES: readonly IdGenerate[] = ['ulid', 'uuid_v4', 'uuid_v7', 'nanoid', 'client'];
const ACTIONS: readonly Action[] = ['no_action', 'restrict', 'cascade', 'set_null', 'set_default'];
const ITEM_TYPES: readonly ItemType[] = ['string', 'int', 'bigint', 'float', 'decimal', 'boolean', 'json', 'timestamp', 'bytes'];

function typeFrom(pick: number, precision: number, scale: number): TypeText {
  const kinds = ['string', 'int', 'bigint', 'float', 'decimal', 'decimal(p,s)', 'boolean', 'json', 'timestamp', 'bytes', 'array'];
  const kind = kinds[pick % kinds.length] as string;
  if (kind !== 'decimal(p,s)') return kind;
  const p = 1 + (precision % 18);
  return `decimal(${p},${scale % (p + 1)})`;
}

/** A decimal literal that fits decimal(p,s), distinct for each k. */
function decimalLiteral(p: number, s: number, k: number): string {
  const intDigits = p - s;
  if (intDigits >= 2) return s > 0 ? `${k + 1}.${'5'.padEnd(s, '0')}` : `${k + 1}`;
  if (intDigits === 1) return s > 0 ? `${k % 10}.${'5'.padEnd(s, '0')}` : `${(k + 1) % 10}`;
  // p === s: only values below 1
  return `0.${String(k + 1).padStart(s, '0')}`;
}

/** A default that fits the type, or undefined (no default); `pick` chooses among a few. */
export function defaultFor(type: TypeText, items: ItemType | undefined, pick: number): JsonValue | undefined {
  if (pick % 3 === 0) return undefined;
  const choose = <T>(list: readonly T[]): T => list[pick % list.length] as T;
  const dec = decimalOf(type);
  if (dec) {
    const text = decimalLiteral(dec[0], dec[1], pick % 5);
    const n = Number(text);
    return pick % 2 === 0 && String(n) === text ? n : text;
  }
  switch (baseType(type)) {
    case 'string':
      return choose(['draft', "it's", '', '42', 'a b', 'yes']);
    case 'int':
      return choose([0, -5, 7, 2147483647, -2147483648]);
    case 'bigint':
      return choose([0, 42, -9000000000, '9223372036854775807', 9007199254740991]);
    case 'float':
      return choose([0.5, -1.25, 0, 3]);
    case 'decimal':
      return choose([12.34, '0.1', 0, '-7.125']);
    case 'boolean':
      return pick % 2 === 0;
    case 'json':
      return choose<JsonValue>([{}, { a: 1 }, [1, 'x'], 's', 3, true, { nested: { k: [null] } }, []]);
    case 'timestamp':
      return 'now';
    case 'bytes':
      return undefined;
    case 'array': {
      const byItem: Record<ItemType, JsonValue[]> = {
        string: ['a', 'b'], int: [1, 2], bigint: [1], float: [1.5], decimal: [2.5], boolean: [true], json: [{ a: 1 }],
        timestamp: ['2024-01-01T00:00:00Z'], bytes: ['AA=='],
      };
      return pick % 2 === 0 ? [] : (byItem[items ?? 'string'] ?? []);
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// building v1

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer U)[] ? U[] : T[K] };
type MColumn = Mutable<ColumnModel>;
type MIndex = Mutable<IndexModel>;
interface MTable extends Omit<Mutable<TableModel>, 'columns' | 'indexes' | 'id'> {
  id: Mutable<TableModel['id']>;
  columns: MColumn[];
  indexes: MIndex[];
}
interface Draft {
  tables: MTable[];
}

class Counters {
  uid = 1;
  added = 0;
  renamed = 0;
  index = 0;
  table = 0;
  hand = 0;
}

function setType(col: MColumn, type: TypeText, items: ItemType | undefined, pick: number): void {
  if (col.type === type && col.items === items) return;
  col.type = type;
  if (baseType(type) === 'array') col.items = items ?? 'string';
  else delete col.items;
  const d = defaultFor(type, col.items, pick);
  if (d === undefined) delete col.default;
  else col.default = d;
  // a unique boolean is not a key anyone declares, and rows could never satisfy it
  if (baseType(type) === 'boolean') col.unique = false;
}

function buildColumn(counters: Counters, name: string, r: ColumnRecipe): MColumn {
  const type = typeFrom(r.type, r.precision, r.scale);
  const col: MColumn = { uid: counters.uid++, name, type, nullable: r.nullable, unique: r.unique && baseType(type) !== 'boolean' };
  if (baseType(type) === 'array') col.items = ITEM_TYPES[r.items % ITEM_TYPES.length] as ItemType;
  const d = defaultFor(type, col.items, r.defaultPick);
  if (d !== undefined) col.default = d;
  return col;
}

function buildTable(counters: Counters, name: string, r: TableRecipe): MTable {
  const id = { uid: counters.uid++, name: ID_NAMES[r.idName % ID_NAMES.length] as string, generate: ID_POLICIES[r.idPolicy % ID_POLICIES.length] as IdGenerate };
  const columns = r.columns.map((c, i) => buildColumn(counters, COLUMN_NAMES[i % COLUMN_NAMES.length] as string, c));
  const all = [id.uid, ...columns.map((c) => c.uid)];
  const indexes: MIndex[] = r.indexes.map((ix) => {
    const uids = [...new Set(ix.columns.map((i) => all[i % all.length] as number))];
    return { columnUids: uids, unique: ix.unique, ...(ix.named ? { name: `ix_${++counters.index}` } : {}) };
  });
  return { uid: counters.uid++, name, id, columns, indexes };
}

const uidsOf = (t: MTable): number[] => [t.id.uid, ...t.columns.map((c) => c.uid)];
const columnOf = (t: MTable, uid: number): MColumn | undefined => t.columns.find((c) => c.uid === uid);
const typeOfUid = (t: MTable, uid: number): { type: TypeText; items: ItemType | undefined } | undefined => {
  if (t.id.uid === uid) return { type: idType(t.id.generate), items: undefined };
  const c = columnOf(t, uid);
  return c && { type: c.type, items: c.items };
};

/** Referenceable columns of a table, in a stable order. */
function keysOf(t: MTable): number[] {
  return uidsOf(t).filter((uid) => isReferenceable(t as unknown as TableModel, uid));
}

function setReference(draft: Draft, col: MColumn, r: NonNullable<ColumnRecipe['ref']>): void {
  const target = draft.tables[r.table % draft.tables.length] as MTable;
  const keys = keysOf(target).filter((uid) => uid !== col.uid);
  if (keys.length === 0) return;
  const key = keys[r.column % keys.length] as number;
  let onDelete = ACTIONS[r.onDelete % ACTIONS.length] as Action;
  let onUpdate = ACTIONS[r.onUpdate % ACTIONS.length] as Action;
  if (!col.nullable && onDelete === 'set_null') onDelete = 'no_action';
  if (!col.nullable && onUpdate === 'set_null') onUpdate = 'no_action';
  col.references = { tableUid: target.uid, columnUid: key, onDelete, onUpdate };
}

// ---------------------------------------------------------------------------------------------
// repair: whatever the edits did, the declaration stays valid

function defaultIndexName(t: MTable, uids: readonly number[]): string {
  return `${t.name}_${uids.map((u) => columnByUid(t as unknown as TableModel, u)?.name ?? '?').join('_')}_idx`;
}

function repair(draft: Draft, pick: number): void {
  for (let round = 0; round < 6; round++) {
    let changed = false;
    // index names are unique per connection, not per table
    const seen = new Set<string>();
    for (const t of draft.tables) {
      const uids = new Set(uidsOf(t));
      t.indexes = t.indexes
        .map((ix) => ({ ...ix, columnUids: ix.columnUids.filter((u) => uids.has(u)) }))
        .filter((ix) => {
          if (ix.columnUids.length === 0) return false;
          const key = ix.name ?? defaultIndexName(t, ix.columnUids);
          if (seen.has(key)) return false;
          seen.add(key);
          return true;
        });
      for (const ix of t.indexes) {
        // a unique key over booleans alone cannot hold more than two rows
        if (ix.unique && ix.columnUids.every((u) => baseType(typeOfUid(t, u)?.type ?? '') === 'boolean')) ix.unique = false;
      }
    }
    for (const t of draft.tables) {
      for (const col of t.columns) {
        const ref = col.references;
        if (!ref) continue;
        const target = draft.tables.find((x) => x.uid === ref.tableUid);
        const targetType = target && typeOfUid(target, ref.columnUid);
        if (!target || !targetType || !isReferenceable(target as unknown as TableModel, ref.columnUid) || (target.uid === t.uid && ref.columnUid === col.uid)) {
          delete col.references;
          changed = true;
          continue;
        }
        if (physicalType(col.type) !== physicalType(targetType.type) || col.type !== targetType.type) {
          setType(col, targetType.type, targetType.items, pick);
          changed = true;
        }
        if (!col.nullable && (ref.onDelete === 'set_null' || ref.onUpdate === 'set_null')) {
          col.references = { ...ref, onDelete: ref.onDelete === 'set_null' ? 'no_action' : ref.onDelete, onUpdate: ref.onUpdate === 'set_null' ? 'no_action' : ref.onUpdate };
        }
      }
    }
    if (!changed) return;
  }
  // a cycle of references whose types keep chasing each other: drop the ones that still disagree
  for (const t of draft.tables) {
    for (const col of t.columns) {
      const ref = col.references;
      const target = ref && draft.tables.find((x) => x.uid === ref.tableUid);
      const targetType = ref && target && typeOfUid(target, ref.columnUid);
      if (ref && (!targetType || targetType.type !== col.type || targetType.items !== col.items)) delete col.references;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// edits

const SAFE_TARGETS: Readonly<Record<string, readonly TypeText[]>> = {
  int: ['bigint', 'float', 'decimal', 'string', 'decimal(15,2)'],
  bigint: ['decimal', 'string', 'float'],
  float: ['string', 'decimal'],
  decimal: ['string', 'float'],
  boolean: ['string'],
  json: ['string', 'array'],
  array: ['json', 'string'],
  timestamp: ['string'],
  bytes: ['string'],
  string: [],
};

function safeTarget(type: TypeText, pick: number): TypeText | undefined {
  const dec = decimalOf(type);
  if (dec) {
    const [p, s] = dec;
    const options: TypeText[] = ['string', 'decimal', 'float'];
    if (p + 2 <= 30) options.unshift(`decimal(${p + 2},${s})`);
    return options[pick % options.length];
  }
  const list = SAFE_TARGETS[baseType(type)] ?? [];
  return list.length === 0 ? undefined : list[pick % list.length];
}

function referencedUids(draft: Draft): Set<number> {
  const out = new Set<number>();
  for (const t of draft.tables) for (const c of t.columns) if (c.references) out.add(c.references.columnUid);
  return out;
}

interface EditContext {
  readonly draft: Draft;
  readonly v1Uids: ReadonlySet<number>;
  readonly v1Names: ReadonlySet<string>;
  readonly counters: Counters;
  readonly enabled: ReadonlySet<Switch>;
}

function pickOf<T>(list: readonly T[], n: number): T | undefined {
  return list.length === 0 ? undefined : list[n % list.length];
}

/** Applies one edit; returns whether it changed the draft. */
function applyEdit(ctx: EditContext, e: EditRecipe): boolean {
  const { draft, counters, enabled } = ctx;
  const t = pickOf(draft.tables, e.a);
  const fkFree = (col: MColumn): boolean => enabled.has('typeUnderForeignKey') || (col.references === undefined && !referencedUids(draft).has(col.uid));
  const uniqueFree = (col: MColumn): boolean => enabled.has('uniqueUnderForeignKey') || !referencedUids(draft).has(col.uid);
  switch (e.kind) {
    case 'addColumn':
    case 'addRequiredColumn': {
      if (!t) return false;
      const type = typeFrom(e.b, e.c, e.c + 1);
      const col: MColumn = { uid: counters.uid++, name: `added_${++counters.added}`, type, nullable: e.kind === 'addColumn', unique: false };
      if (baseType(type) === 'array') col.items = ITEM_TYPES[e.c % ITEM_TYPES.length] as ItemType;
      if (e.kind === 'addColumn') {
        const d = defaultFor(type, col.items, e.c);
        if (d !== undefined) col.default = d;
        if (e.b % 2 === 1 && d !== undefined) col.nullable = false;
      }
      t.columns.push(col);
      return true;
    }
    case 'dropColumn': {
      const col = t && pickOf(t.columns, e.b);
      if (!t || !col) return false;
      t.columns = t.columns.filter((c) => c !== col);
      return true;
    }
    case 'renameColumn': {
      const col = t && pickOf(t.columns, e.b);
      if (!t || !col || !ctx.v1Uids.has(col.uid)) return false;
      col.previousNames = [...(col.previousNames ?? []), col.name];
      col.name = `renamed_${++counters.renamed}`;
      return true;
    }
    case 'typeSafe':
    case 'typeUnsafe': {
      const col = t && pickOf(t.columns.filter((c) => fkFree(c)), e.b);
      if (!t || !col) return false;
      let to: TypeText | undefined;
      if (e.kind === 'typeSafe') to = safeTarget(col.type, e.c);
      else {
        to = typeFrom(e.c, e.b, e.a);
        const safe = decimalOf(col.type) ? ['string', 'decimal', 'float'] : (SAFE_TARGETS[baseType(col.type)] ?? []);
        if (safe.includes(to)) to = undefined;
      }
      if (to === undefined || to === col.type) return false;
      setType(col, to, baseType(to) === 'array' ? (ITEM_TYPES[e.a % ITEM_TYPES.length] as ItemType) : undefined, e.c);
      return true;
    }
    case 'setNotNull': {
      const col = t && pickOf(t.columns.filter((c) => c.nullable), e.b);
      if (!col) return false;
      col.nullable = false;
      return true;
    }
    case 'dropNotNull': {
      const col = t && pickOf(t.columns.filter((c) => !c.nullable), e.b);
      if (!col) return false;
      col.nullable = true;
      return true;
    }
    case 'setDefault': {
      const col = t && pickOf(t.columns, e.b);
      if (!col) return false;
      const d = defaultFor(col.type, col.items, e.c * 3 + 1);
      if (d === undefined || JSON.stringify(d) === JSON.stringify(col.default)) return false;
      col.default = d;
      return true;
    }
    case 'dropDefault': {
      const col = t && pickOf(t.columns.filter((c) => c.default !== undefined), e.b);
      if (!col) return false;
      delete col.default;
      return true;
    }
    case 'addUnique': {
      const col = t && pickOf(t.columns.filter((c) => !c.unique && baseType(c.type) !== 'boolean'), e.b);
      if (!col) return false;
      col.unique = true;
      return true;
    }
    case 'dropUnique': {
      const col = t && pickOf(t.columns.filter((c) => c.unique && uniqueFree(c)), e.b);
      if (!col) return false;
      col.unique = false;
      return true;
    }
    case 'uniqueForm': {
      if (!t) return false;
      const asIndex = t.indexes.filter((ix) => ix.unique && ix.columnUids.length === 1 && columnOf(t, ix.columnUids[0] as number));
      const candidates: Array<{ col: MColumn; index?: MIndex }> = [
        ...t.columns.filter((c) => c.unique).map((col) => ({ col })),
        ...asIndex.map((index) => ({ col: columnOf(t, index.columnUids[0] as number) as MColumn, index })),
      ].filter((x) => uniqueFree(x.col));
      const pickd = pickOf(candidates, e.b);
      if (!pickd) return false;
      if (pickd.index) {
        t.indexes = t.indexes.filter((ix) => ix !== pickd.index);
        pickd.col.unique = true;
      } else {
        pickd.col.unique = false;
        t.indexes.push({ columnUids: [pickd.col.uid], unique: true, ...(e.c % 2 === 0 ? {} : { name: `ix_${++counters.index}` }) });
      }
      return true;
    }
    case 'addIndex': {
      if (!t) return false;
      const all = uidsOf(t);
      const uids = [...new Set([all[e.b % all.length] as number, ...(e.c % 2 === 0 ? [] : [all[e.c % all.length] as number])])];
      t.indexes.push({ columnUids: uids, unique: e.c % 3 === 0, ...(e.a % 2 === 0 ? {} : { name: `ix_${++counters.index}` }) });
      return true;
    }
    case 'dropIndex': {
      const ix = t && pickOf(t.indexes, e.b);
      if (!t || !ix) return false;
      const col = ix.columnUids.length === 1 ? columnOf(t, ix.columnUids[0] as number) : undefined;
      if (ix.unique && col && !uniqueFree(col)) return false;
      t.indexes = t.indexes.filter((x) => x !== ix);
      return true;
    }
    case 'renameIndex': {
      const ix = t && pickOf(t.indexes, e.b);
      if (!ix) return false;
      if (ix.name !== undefined && e.c % 2 === 0) delete ix.name;
      else ix.name = `ix_${++counters.index}`;
      return true;
    }
    case 'changeIndex': {
      const ix = t && pickOf(t.indexes, e.b);
      if (!t || !ix) return false;
      const col = ix.columnUids.length === 1 ? columnOf(t, ix.columnUids[0] as number) : undefined;
      if (ix.unique && col && !uniqueFree(col)) return false;
      if (e.c % 2 === 0) ix.unique = !ix.unique;
      else {
        const all = uidsOf(t);
        const extra = all[e.c % all.length] as number;
        if (ix.columnUids.includes(extra)) return false;
        ix.columnUids = [...ix.columnUids, extra];
      }
      return true;
    }
    case 'exchangeIndexNames': {
      const withIndexes = draft.tables.filter((x) => x.indexes.length > 0);
      const t1 = pickOf(withIndexes, e.a);
      const t2 = pickOf(withIndexes.filter((x) => x !== t1), e.b);
      if (!t1 || !t2) return false;
      const i1 = t1.indexes[e.c % t1.indexes.length] as MIndex;
      const i2 = t2.indexes[e.b % t2.indexes.length] as MIndex;
      const n1 = i1.name ?? defaultIndexName(t1, i1.columnUids);
      const n2 = i2.name ?? defaultIndexName(t2, i2.columnUids);
      i1.name = n2;
      i2.name = n1;
      return true;
    }
    case 'addReference': {
      if (!t) return false;
      const target = pickOf(draft.tables, e.b) as MTable;
      const key = pickOf(keysOf(target), e.c);
      if (key === undefined) return false;
      const type = typeOfUid(target, key) as { type: TypeText; items: ItemType | undefined };
      const existing = t.columns.filter((c) => !c.references && c.uid !== key && c.type === type.type && c.items === type.items && fkFree(c));
      let col = e.a % 2 === 0 ? pickOf(existing, e.c) : undefined;
      if (!col) {
        col = { uid: counters.uid++, name: `added_${++counters.added}`, type: type.type, nullable: true, unique: false };
        if (type.items !== undefined) col.items = type.items;
        t.columns.push(col);
      }
      const onDelete = ACTIONS[e.c % ACTIONS.length] as Action;
      col.references = { tableUid: target.uid, columnUid: key, onDelete: !col.nullable && onDelete === 'set_null' ? 'no_action' : onDelete, onUpdate: 'no_action' };
      return true;
    }
    case 'dropReference': {
      const col = t && pickOf(t.columns.filter((c) => c.references), e.b);
      if (!col) return false;
      delete col.references;
      return true;
    }
    case 'changeReferenceActions': {
      const col = t && pickOf(t.columns.filter((c) => c.references), e.b);
      if (!col?.references) return false;
      const onDelete = ACTIONS[e.c % ACTIONS.length] as Action;
      const onUpdate = ACTIONS[e.a % ACTIONS.length] as Action;
      const next: ReferenceModel = {
        ...col.references,
        onDelete: !col.nullable && onDelete === 'set_null' ? 'no_action' : onDelete,
        onUpdate: !col.nullable && onUpdate === 'set_null' ? 'no_action' : onUpdate,
      };
      if (next.onDelete === col.references.onDelete && next.onUpdate === col.references.onUpdate) return false;
      col.references = next;
      return true;
    }
    case 'changeIdPolicy': {
      if (!t || t.id.generate === 'auto_increment') return false;
      const next = pickOf(TEXT_POLICIES.filter((p) => p !== t.id.generate), e.b) as IdGenerate;
      t.id.generate = next;
      return true;
    }
    case 'retypeId':
    case 'becomeIdentity': {
      if (!t || (t.id.generate === 'auto_increment') !== (e.kind === 'retypeId')) return false;
      if (!enabled.has('typeUnderForeignKey') && referencedUids(draft).has(t.id.uid)) return false;
      t.id.generate = e.kind === 'retypeId' ? (pickOf(TEXT_POLICIES, e.b) as IdGenerate) : 'auto_increment';
      return true;
    }
    case 'renameId':
    case 'renameIdentity': {
      if (!t || !ctx.v1Uids.has(t.id.uid)) return false;
      if ((t.id.generate === 'auto_increment') !== (e.kind === 'renameIdentity')) return false;
      t.id.previousNames = [...(t.id.previousNames ?? []), t.id.name];
      t.id.name = `pk_${++counters.renamed}`;
      return true;
    }
    case 'addTable': {
      // never a name v1 had: a re-added name would be the old table altered, not a new one
      const used = new Set([...draft.tables.map((x) => x.name), ...ctx.v1Names]);
      const name = TABLE_NAMES.find((n) => !used.has(n)) ?? `extra_${++counters.table}`;
      const recipe: TableRecipe = {
        idPolicy: e.a,
        idName: e.b,
        columns: [
          { type: e.b, precision: e.c, scale: e.a, items: e.c, nullable: e.c % 2 === 0, unique: e.a % 3 === 0, defaultPick: e.c, ref: null },
          { type: e.c, precision: e.a, scale: e.b, items: e.a, nullable: true, unique: false, defaultPick: e.a, ref: e.a % 2 === 0 ? { table: e.b, column: e.c, onDelete: e.a, onUpdate: e.b } : null },
        ],
        indexes: e.b % 2 === 0 ? [{ columns: [1], unique: false, named: e.c % 2 === 0 }] : [],
      };
      const table = buildTable(counters, name, recipe);
      draft.tables.push(table);
      const refRecipe = recipe.columns[1]?.ref;
      const refCol = table.columns[1];
      if (refRecipe && refCol) setReference(draft, refCol, refRecipe);
      return true;
    }
    case 'addTableNamedLikeSequence': {
      const owner = pickOf(draft.tables.filter((x) => x.id.generate === 'auto_increment'), e.a);
      if (!owner) return false;
      const name = `${owner.name}_${owner.id.name}_seq`;
      if (draft.tables.some((x) => x.name === name) || ctx.v1Names.has(name)) return false;
      draft.tables.push(buildTable(counters, name, { idPolicy: 0, idName: 0, columns: [], indexes: [] }));
      return true;
    }
    case 'dropTable': {
      if (!t || draft.tables.length < 2) return false;
      draft.tables = draft.tables.filter((x) => x !== t);
      return true;
    }
    case 'renameTable': {
      if (!t || !ctx.v1Uids.has(t.uid)) return false;
      t.previousNames = [...(t.previousNames ?? []), t.name];
      t.name = `moved_${++counters.table}`;
      return true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// settling v2 against the rows (when rows must never conflict)

/** With `rowConflicts` off, v2 never asks existing rows for what they cannot give. */
function settle(draft: Draft, v1: DeclarationModel, enabled: ReadonlySet<Switch>): void {
  if (enabled.has('rowConflicts')) return;
  const v1Uids = new Set(v1.tables.flatMap((t) => [t.uid, t.id.uid, ...t.columns.map((c) => c.uid)]));
  for (const t of draft.tables) {
    if (!v1Uids.has(t.uid)) continue;
    const uniqueUids = new Set([...t.columns.filter((c) => c.unique).map((c) => c.uid), ...t.indexes.filter((ix) => ix.unique).flatMap((ix) => ix.columnUids)]);
    for (const col of t.columns) {
      if (v1Uids.has(col.uid)) continue;
      // a new column: ADD COLUMN … DEFAULT gives every row the same value, which a key or a
      // reference over it cannot hold
      if (col.default !== undefined && (uniqueUids.has(col.uid) || col.references)) {
        delete col.default;
      }
      if (!col.nullable && col.default === undefined && !enabled.has('addRequiredColumn')) {
        const d = defaultFor(col.type, col.items, 1);
        if (d !== undefined && !uniqueUids.has(col.uid) && !col.references) col.default = d;
        else col.nullable = true;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// rows

interface TableRows {
  /** SQL literal of each referenceable column's value, per row */
  readonly keys: Map<number, string[]>;
}

const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

function valueLiteral(type: TypeText, items: ItemType | undefined, k: number, conflicts: boolean, seed: number): string {
  const v = conflicts ? (k + seed) % 2 : k;
  const dec = decimalOf(type);
  if (dec) return `${decimalLiteral(dec[0], dec[1], v)}`;
  switch (baseType(type)) {
    case 'string':
      return sqlString(`v${v}`);
    case 'int':
      return String(v + 1);
    case 'bigint':
      return String(1000 + v);
    case 'float':
      return `${v}.5`;
    case 'decimal':
      return `${v}.25`;
    case 'boolean':
      return v % 2 === 0 ? 'true' : 'false';
    case 'json':
      return `${sqlString(JSON.stringify({ k: v }))}::jsonb`;
    case 'array': {
      const item: Record<ItemType, JsonValue> = {
        string: `i${v}`, int: v, bigint: v, float: v + 0.5, decimal: v + 0.25, boolean: v % 2 === 0, json: { k: v },
        timestamp: `2024-01-0${(v % 9) + 1}T00:00:00Z`, bytes: 'AA==',
      };
      // as many items as v + 1: distinct for every row whatever the item type
      return `${sqlString(JSON.stringify(Array.from({ length: v + 1 }, () => item[items ?? 'string'])))}::jsonb`;
    }
    case 'timestamp':
      return `${sqlString(`2024-01-0${(v % 9) + 1} 00:00:00+00`)}::timestamptz`;
    case 'bytes':
      return `${sqlString(`\\x0${v % 10}`)}::bytea`;
    default:
      return 'NULL';
  }
}

const quote = (name: string): string => `"${name}"`;

/** Tables in an order where every referenced table comes first (self references aside); cycles keep model order. */
function insertOrder(model: DeclarationModel): TableModel[] {
  const out: TableModel[] = [];
  const done = new Set<number>();
  const visiting = new Set<number>();
  const visit = (t: TableModel): void => {
    if (done.has(t.uid) || visiting.has(t.uid)) return;
    visiting.add(t.uid);
    for (const c of t.columns) {
      const target = c.references && c.references.tableUid !== t.uid ? tableByUid(model, c.references.tableUid) : undefined;
      if (target) visit(target);
    }
    visiting.delete(t.uid);
    done.add(t.uid);
    out.push(t);
  };
  model.tables.forEach(visit);
  return out;
}

function findColumn(model: DeclarationModel, uid: number): ColumnModel | undefined {
  for (const t of model.tables) {
    const c = t.columns.find((x) => x.uid === uid);
    if (c) return c;
  }
  return undefined;
}

/** INSERTs for v1 that every v2 edit can keep (unless `rowConflicts`). */
function buildRows(v1: DeclarationModel, v2: DeclarationModel, counts: readonly number[], enabled: ReadonlySet<Switch>): string[] {
  const conflicts = enabled.has('rowConflicts');
  const out: string[] = [];
  const inserted = new Map<number, TableRows>();
  insertOrder(v1).forEach((t, ti) => {
    const n = counts[ti % counts.length] ?? 0;
    if (n === 0) return;
    const keys = new Map<number, string[]>();
    const rows: string[][] = [];
    const names = [...(t.id.generate === 'auto_increment' ? [] : [t.id.name]), ...t.columns.map((c) => c.name)];
    const uniqueUids = new Set([...t.columns.filter((c) => c.unique).map((c) => c.uid), ...t.indexes.filter((ix) => ix.unique).flatMap((ix) => ix.columnUids)]);
    // a row that cannot be made ends the table's rows (those before it stay)
    rowLoop: for (let k = 0; k < n; k++) {
      const row: string[] = [];
      const idValue = t.id.generate === 'auto_increment' ? String(k + 1) : sqlString(String(100 + k));
      if (t.id.generate !== 'auto_increment') row.push(idValue);
      const rowKeys: [number, string][] = [[t.id.uid, idValue]];
      for (const c of t.columns) {
        const after = findColumn(v2, c.uid);
        let value: string | undefined;
        if (c.references) {
          const ref = c.references;
          const candidates = (ref.tableUid === t.uid ? keys : inserted.get(ref.tableUid)?.keys)?.get(ref.columnUid) ?? [];
          // a row may reference its own text id (checked at the end of the statement)
          const usable = ref.tableUid === t.uid && ref.columnUid === t.id.uid && t.id.generate !== 'auto_increment' ? [...candidates, idValue] : candidates;
          // distinct values, so a unique key over the column (now or in v2) holds
          const picked = !conflicts || uniqueUids.has(c.uid) ? usable[k] : usable[k % Math.max(usable.length, 1)];
          if (picked !== undefined && !(c.nullable && conflicts && (k + ti) % 3 === 0)) value = picked;
          else if (c.nullable && (conflicts || after === undefined || after.nullable)) value = 'NULL';
          else break rowLoop;
        } else if (!conflicts && after?.references && JSON.stringify(after.references) !== JSON.stringify(c.references)) {
          // a reference arrives in v2: only NULL is sure to satisfy it
          if (!c.nullable || !after.nullable) break rowLoop;
          value = 'NULL';
        } else if (conflicts && c.nullable && (k + ti) % 3 === 1) {
          value = 'NULL';
        } else {
          value = valueLiteral(c.type, c.items, k, conflicts && !uniqueUids.has(c.uid), ti);
        }
        row.push(value);
        if (value !== 'NULL') rowKeys.push([c.uid, value]);
      }
      for (const [uid, value] of rowKeys) if (isReferenceable(t, uid)) (keys.get(uid) ?? keys.set(uid, []).get(uid))?.push(value);
      rows.push(row);
    }
    inserted.set(t.uid, { keys });
    if (names.length === 0) out.push(...rows.map(() => `INSERT INTO ${quote(t.name)} DEFAULT VALUES`));
    else out.push(...rows.map((r) => `INSERT INTO ${quote(t.name)} (${names.map(quote).join(', ')}) VALUES (${r.join(', ')})`));
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// hand-made objects

function columnName(model: DeclarationModel, tableUid: number, uid: number): { table: string; column: string } | undefined {
  const t = tableByUid(model, tableUid);
  const ref = t && columnByUid(t, uid);
  return t && ref ? { table: t.name, column: ref.name } : undefined;
}

function buildHandmade(v1: DeclarationModel, v2: DeclarationModel, recipes: readonly HandmadeRecipe[], counters: Counters): { before: string[]; after: string[] } {
  const before: string[] = [];
  const after: string[] = [];
  for (const r of recipes) {
    const t = pickOf(v1.tables, r.a);
    if (!t) continue;
    const n = ++counters.hand;
    const t2 = tableByUid(v2, t.uid);
    switch (r.kind) {
      case 'handColumn': {
        const sql = (table: string): string => `ALTER TABLE ${quote(table)} ADD COLUMN "hand_col_${n}" text`;
        before.push(sql(t.name));
        if (t2) after.push(sql(t2.name));
        break;
      }
      case 'handIndex':
      case 'handView':
      case 'handCheck':
      case 'handCheckText':
      case 'handUnique': {
        const all = [t.id.uid, ...t.columns.map((c) => c.uid)];
        const pool =
          r.kind === 'handUnique'
            ? t.columns.map((c) => c.uid)
            : r.kind === 'handCheckText'
              ? all.filter((uid) => columnByUid(t, uid)?.type === 'string')
              : all;
        const uid = pickOf(pool, r.b);
        if (uid === undefined) continue;
        const sql = (where: { table: string; column: string }, id: string): string => {
          if (r.kind === 'handView') return `CREATE VIEW "hand_view_${n}" AS SELECT ${quote(where.column)} AS "value" FROM ${quote(where.table)}`;
          if (r.kind === 'handIndex') return `CREATE INDEX "hand_ix_${n}" ON ${quote(where.table)} (${quote(where.column)})`;
          if (r.kind === 'handCheck') return `ALTER TABLE ${quote(where.table)} ADD CONSTRAINT "hand_chk_${n}" CHECK (num_nulls(${quote(where.column)}) < 2)`;
          if (r.kind === 'handCheckText') return `ALTER TABLE ${quote(where.table)} ADD CONSTRAINT "hand_chk_${n}" CHECK (length(${quote(where.column)}) < 100000)`;
          // the id makes the pair unique whatever the rows hold
          return `ALTER TABLE ${quote(where.table)} ADD CONSTRAINT "hand_uq_${n}" UNIQUE (${quote(id)}, ${quote(where.column)})`;
        };
        const w1 = columnName(v1, t.uid, uid) as { table: string; column: string };
        before.push(sql(w1, t.id.name));
        const w2 = columnName(v2, t.uid, uid);
        if (t2 && w2) after.push(sql(w2, t2.id.name));
        break;
      }
    }
  }
  return { before, after };
}

// ---------------------------------------------------------------------------------------------

function freeze(draft: Draft): DeclarationModel {
  return JSON.parse(JSON.stringify(draft)) as DeclarationModel;
}

/** Recipe → pair. Deterministic: the same recipe and switches give the same pair. */
export function buildPair(recipe: PairRecipe, enabled: ReadonlySet<Switch>): GeneratedPair {
  const counters = new Counters();
  const draft: Draft = { tables: recipe.tables.map((r, i) => buildTable(counters, TABLE_NAMES[i] as string, r)) };
  recipe.tables.forEach((r, ti) => {
    const table = draft.tables[ti] as MTable;
    r.columns.forEach((c, ci) => {
      const col = table.columns[ci];
      if (c.ref && col) setReference(draft, col, c.ref);
    });
  });
  repair(draft, 1);
  const model1 = freeze(draft);
  const v1Uids = new Set(model1.tables.flatMap((t) => [t.uid, t.id.uid, ...t.columns.map((c) => c.uid)]));

  const v1Names = new Set(model1.tables.map((t) => t.name));
  const next: Draft = JSON.parse(JSON.stringify(model1)) as Draft;
  const applied: EditKind[] = [];
  for (const e of recipe.edits) {
    if (applyEdit({ draft: next, v1Uids, v1Names, counters, enabled }, e)) applied.push(e.kind);
    repair(next, e.c);
  }
  settle(next, model1, enabled);
  repair(next, 2);
  const model2 = freeze(next);
  const hand = buildHandmade(model1, model2, recipe.handmade, counters);
  const reserved = model2.tables.filter((t) => t.name.endsWith('_seq')).map((t) => t.name);
  return {
    v1: renderYaml(model1),
    v2: renderYaml(model2),
    rows: buildRows(model1, model2, recipe.rows, enabled),
    handmade: hand.before,
    handmadeAfter: hand.after,
    ...(reserved.length > 0 ? { reservedNames: reserved } : {}),
    kept: keptData(model1, model2),
    model1,
    model2,
    applied,
  };
}

/** Parses a switch list (`all`, `none`, `default`, or names, `-name` to remove). */
export function parseSwitches(text: string | undefined, defaults: ReadonlySet<Switch>): Set<Switch> {
  if (text === undefined || text.trim() === '' || text.trim() === 'default') return new Set(defaults);
  const out = new Set<Switch>();
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === 'all') ALL_SWITCHES.forEach((s) => out.add(s));
    else if (raw === 'none') out.clear();
    else if (raw === 'default') defaults.forEach((s) => out.add(s));
    else {
      const remove = raw.startsWith('-');
      const name = (remove ? raw.slice(1) : raw) as Switch;
      if (!ALL_SWITCHES.includes(name)) throw new Error(`unknown oracle switch "${name}" (known: ${ALL_SWITCHES.join(', ')})`);
      if (remove) out.delete(name);
      else out.add(name);
    }
  }
  return out;
}
