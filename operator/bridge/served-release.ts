import { OPERATIONS, parseCondition, type CompiledCondition, type Operation } from '../../core/permissions/policy.ts';
import type { ColumnIR, IdGenerate, SchemaIR, TableIR } from '../../core/schema/ir.ts';
import { ID_GENERATORS } from '../../core/schema/ir.ts';

/**
 * A Release as the data plane serves it: tables indexed by name (with their connection and
 * columns) and the permission policy normalised into rules that are cheap to evaluate.
 * Releases are immutable, so this is computed once per release and cached.
 *
 * The policy was validated by `stk apply`; it is read defensively anyway (a Release can be written
 * by hand). A rule the data plane cannot understand is kept as an *invalid* rule: if it is the one
 * that decides a request, the request fails with 400 — it never silently passes. A rule whose
 * roles cannot be read matches nobody (denies).
 */

export interface ServedTable {
  readonly name: string;
  /** the connection (database) the table lives in */
  readonly connection: string;
  /** columns in declaration order */
  readonly columns: readonly ColumnIR[];
  readonly columnsByName: ReadonlyMap<string, ColumnIR>;
  readonly id: { readonly column: string; readonly generate: IdGenerate };
  /**
   * Columns a select may order by first: the leading column of the primary key, of a unique
   * constraint, or of an index the release declares (a plain btree one). Computed once per
   * release, so the check per call is a lookup. Later `orderBy` columns only break ties.
   */
  readonly orderable: ReadonlySet<string>;
  /**
   * Column sets that identify a row: the primary key's and each unique constraint's or unique
   * index's. Keyset paging (`after`) needs its columns to contain one of them, or rows that tie
   * on the page boundary would be skipped.
   */
  readonly uniqueKeys: ReadonlyArray<readonly string[]>;
}

export interface ServedRule {
  readonly roles: ReadonlySet<string>;
  /** '*' or the columns the rule lets the caller read (select) or write (insert/update) */
  readonly columns: '*' | ReadonlySet<string>;
  readonly condition: CompiledCondition | null;
  /** set when the rule cannot be enforced; deciding with it is a 400 */
  readonly invalid?: string;
}

export interface ServedRelease {
  readonly id: string;
  readonly tables: ReadonlyMap<string, ServedTable>;
  /** table → operation → ordered rules */
  readonly rules: ReadonlyMap<string, ReadonlyMap<Operation, readonly ServedRule[]>>;
  /** connection names the release's tables use */
  readonly connections: readonly string[];
}

/** Thrown when a Release's content cannot be served at all. */
export class UnservableReleaseError extends Error {}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Builds the served form of a Release's `spec.schema` and `spec.permissions`. */
export function compileServedRelease(id: string, schema: unknown, permissions: unknown): ServedRelease {
  if (!isRecord(schema)) throw new UnservableReleaseError(`release ${id} has no schema`);
  const tables = new Map<string, ServedTable>();
  for (const connection of Object.keys(schema).sort()) {
    const ir = schema[connection] as SchemaIR | undefined;
    if (!isRecord(ir) || !isRecord(ir.tables)) throw new UnservableReleaseError(`release ${id}: schema of connection ${connection} is malformed`);
    for (const table of Object.values(ir.tables) as TableIR[]) {
      if (!isRecord(table) || typeof table.name !== 'string' || !Array.isArray(table.columns)) throw new UnservableReleaseError(`release ${id}: a table of connection ${connection} is malformed`);
      if (tables.has(table.name)) continue;
      tables.set(table.name, servedTable(table, connection));
    }
  }

  const rules = new Map<string, Map<Operation, ServedRule[]>>();
  const policyTables = isRecord(permissions) && isRecord(permissions.tables) ? permissions.tables : {};
  for (const [tableName, ops] of Object.entries(policyTables)) {
    const table = tables.get(tableName);
    if (!table || !isRecord(ops)) continue;
    const byOp = new Map<Operation, ServedRule[]>();
    for (const op of OPERATIONS) {
      const given = ops[op];
      if (given === undefined) continue;
      const list = Array.isArray(given) ? given : [given];
      byOp.set(
        op,
        list.map((r) => servedRule(r, table)),
      );
    }
    rules.set(tableName, byOp);
  }
  const connections = [...new Set([...tables.values()].map((t) => t.connection))].sort();
  return { id, tables, rules, connections: connections.length > 0 ? connections : Object.keys(schema).sort() };
}

function servedTable(table: TableIR, connection: string): ServedTable {
  const columns = table.columns.filter((c) => isRecord(c) && typeof c.name === 'string' && typeof c.type === 'string');
  const columnsByName = new Map(columns.map((c) => [c.name, c]));
  let id: ServedTable['id'];
  if (table.id && columnsByName.has(table.id.column) && ID_GENERATORS.includes(table.id.generate)) id = { column: table.id.column, generate: table.id.generate };
  else {
    const pk = table.primaryKey?.columns?.[0] ?? columns[0]?.name ?? 'id';
    const identity = columnsByName.get(pk)?.identity;
    id = { column: pk, generate: identity ? 'auto_increment' : 'client' };
  }
  const { orderable, uniqueKeys } = keysOf(table, columnsByName);
  return { name: table.name, connection, columns, columnsByName, id, orderable, uniqueKeys };
}

/**
 * The orderable columns and unique keys of a table (a declared table's primary key is its id
 * column, so the id is always orderable). Only keys and indexes over columns the table has
 * count; an index with a `definition` (expression, partial, non-btree: introspected, never
 * declared) or marked invalid does not, since its leading column may not be usable for a sort.
 */
function keysOf(table: TableIR, columnsByName: ReadonlyMap<string, ColumnIR>): Pick<ServedTable, 'orderable' | 'uniqueKeys'> {
  const orderable = new Set<string>();
  const uniqueKeys: string[][] = [];
  const usable = (columns: unknown): columns is string[] =>
    Array.isArray(columns) && columns.length > 0 && columns.every((c) => typeof c === 'string' && columnsByName.has(c));
  const add = (columns: unknown, unique: boolean) => {
    if (!usable(columns)) return;
    orderable.add(columns[0]!);
    if (unique) uniqueKeys.push([...columns]);
  };
  if (isRecord(table.primaryKey)) add(table.primaryKey.columns, true);
  for (const u of Array.isArray(table.uniques) ? table.uniques : []) if (isRecord(u)) add(u.columns, true);
  for (const ix of Array.isArray(table.indexes) ? table.indexes : []) {
    if (isRecord(ix) && (ix.definition === null || ix.definition === undefined) && ix.valid !== false) add(ix.columns, ix.unique === true);
  }
  return { orderable, uniqueKeys };
}

function servedRule(raw: unknown, table: ServedTable): ServedRule {
  if (!isRecord(raw)) return { roles: new Set(), columns: new Set(), condition: null, invalid: 'a rule is not an object' };
  const roles = Array.isArray(raw.roles) && raw.roles.every((r) => typeof r === 'string') ? new Set(raw.roles as string[]) : new Set<string>();
  let invalid: string | undefined;

  let columns: ServedRule['columns'];
  if (raw.columns === undefined || raw.columns === '*') columns = '*';
  else if (Array.isArray(raw.columns) && raw.columns.every((c) => typeof c === 'string')) columns = raw.columns.includes('*') ? '*' : new Set(raw.columns as string[]);
  else {
    columns = new Set();
    invalid = 'the rule has a columns list the data plane cannot read';
  }

  let condition: CompiledCondition | null = null;
  const c = raw.condition;
  if (c !== undefined && c !== null) {
    const parsed = typeof c === 'string' ? parseCondition(c) : compiledCondition(c);
    if (!parsed) invalid = 'the rule has an unsupported condition (only resource.<column> == request.auth.sub or == "literal")';
    else if (!table.columnsByName.has(parsed.column)) invalid = `the rule's condition names a column table ${table.name} does not have`;
    else condition = parsed;
  }
  return invalid === undefined ? { roles, columns, condition } : { roles, columns, condition, invalid };
}

function compiledCondition(c: unknown): CompiledCondition | undefined {
  if (!isRecord(c) || typeof c.column !== 'string' || !isRecord(c.equals)) return undefined;
  const keys = Object.keys(c).sort().join(',');
  if (keys !== 'column,equals') return undefined;
  const eq = c.equals;
  if (eq.kind === 'sub' && Object.keys(eq).length === 1) return { column: c.column, equals: { kind: 'sub' } };
  if (eq.kind === 'literal' && typeof eq.value === 'string' && Object.keys(eq).length === 2) return { column: c.column, equals: { kind: 'literal', value: eq.value } };
  return undefined;
}
