import { ForbiddenError, NotFoundError, UsageError } from '../../core/errors.ts';
import type { CompiledCondition, Operation } from '../../core/permissions/policy.ts';
import { generateId } from './ids.ts';
import { CallErrorCode, MAX_LIMIT, shownName, type CallRequest, type Direction } from './call.ts';
import type { ServedRelease, ServedRule, ServedTable } from './served-release.ts';
import { encodeValue, valueClassOf, type SqlValue } from './values.ts';

/**
 * A call → a query plan: the permission decision, every column checked against the release IR and
 * the rule, every value checked against its column's type, the rule's condition turned into a
 * bound predicate. Pure: the plan is data; `execute.ts` turns it into parameterised SQL.
 *
 * Decision order (first failure wins): unknown table 404 → no rule for the caller's roles 403 →
 * an unenforceable rule 400 → unknown column or bad value 400 → a column the rule does not allow 403.
 * For a select's `orderBy` and `after`, every column named passes the last two checks before the
 * ordering rules apply: `orderBy` starts with an indexed column (400 `OrderByNotIndexed`), and
 * `after` is a well-formed keyset position for that order (400, see `keysetOf`).
 *
 * Every column a call names is checked against the caller's rules: `select`, `orderBy` and
 * `where` (of every operation) against what its select rule lets it read (plus, in `where`, the
 * deciding rule's condition column); `data` against what the deciding rule lets it write; the
 * columns an insert answers with against what it may read (the id always: it is the row's handle).
 */

/** Who is calling: the key's roles, and its id as `request.auth.sub`. */
export interface Caller {
  readonly sub: string;
  readonly roles: readonly string[];
}

export interface Filter {
  readonly column: string;
  readonly value: SqlValue;
}

export type QueryPlan =
  | {
      readonly kind: 'select';
      readonly table: ServedTable;
      readonly columns: readonly string[];
      readonly filters: readonly Filter[];
      readonly orderBy: ReadonlyArray<readonly [string, Direction]>;
      /** keyset paging: rows strictly after this position in `orderBy` (whose columns it names, in order) */
      readonly after: Keyset | null;
      readonly limit: number;
      readonly offset: number;
    }
  | { readonly kind: 'insert'; readonly table: ServedTable; readonly values: ReadonlyArray<readonly [string, SqlValue]>; readonly returning: readonly string[] }
  | { readonly kind: 'update'; readonly table: ServedTable; readonly set: ReadonlyArray<readonly [string, SqlValue]>; readonly filters: readonly Filter[] }
  | { readonly kind: 'delete'; readonly table: ServedTable; readonly filters: readonly Filter[] };

/** A keyset position: values of the `orderBy` columns, in their order, all sorted one way. */
export interface Keyset {
  readonly direction: Direction;
  readonly values: readonly Filter[];
}

/** Codes of refusals about ordering and paging (400). */
export const PagingCode = {
  /** the first `orderBy` column leads no index the release declares */
  OrderByNotIndexed: 'OrderByNotIndexed',
  /** `after` does not name exactly the order's columns, or they do not identify a row, or may be null */
  InvalidAfter: 'InvalidAfter',
  /** `after` with an order that mixes ascending and descending columns */
  MixedDirections: 'AfterMixedDirections',
} as const;

/** Codes of permission refusals. */
export const PermissionCode = {
  NoRule: 'PermissionDenied',
  ColumnNotAllowed: 'ColumnNotAllowed',
  ConditionViolated: 'ConditionViolated',
} as const;

/** The first rule of table/op whose roles intersect the caller's; 403 when there is none. */
export function decideRule(release: ServedRelease, table: string, op: Operation, roles: readonly string[]): ServedRule {
  const rules = release.rules.get(table)?.get(op) ?? [];
  const rule = rules.find((r) => roles.some((role) => r.roles.has(role)));
  if (!rule) {
    const preposition = { select: 'from ', insert: 'into ', update: '', delete: 'from ' }[op];
    throw new ForbiddenError(`no permission rule lets roles [${roles.join(', ')}] ${op} ${preposition}table ${table}`, { reason: PermissionCode.NoRule });
  }
  if (rule.invalid !== undefined) {
    throw new UsageError(`the permission rule that decides ${op} on table ${table} cannot be enforced: ${rule.invalid}`, {
      reason: CallErrorCode.UnsupportedCondition,
      hint: 'fix config/permissions.yaml and apply a new release',
    });
  }
  return rule;
}

/** A select rule's readable columns in declaration order: what a select without `select` reads (a rule belongs to one table). */
const readableColumns = new WeakMap<ServedRule, readonly string[]>();
function readableColumnsOf(table: ServedTable, rule: ServedRule): readonly string[] {
  let columns = readableColumns.get(rule);
  if (columns === undefined) readableColumns.set(rule, (columns = table.columns.map((c) => c.name).filter((c) => allows(rule, c))));
  return columns;
}

function allows(rule: ServedRule, column: string): boolean {
  return rule.columns === '*' || rule.columns.has(column);
}

function columnOf(table: ServedTable, name: string, where: string) {
  const column = table.columnsByName.get(name);
  if (!column) throw new UsageError(`unknown column ${shownName(name)} in ${where} of table ${table.name}`, { reason: CallErrorCode.UnknownColumn });
  return column;
}

function notAllowed(table: ServedTable, column: string, what: string): ForbiddenError {
  return new ForbiddenError(`column ${column} of table ${table.name} may not be ${what} by this key's rule`, { reason: PermissionCode.ColumnNotAllowed });
}

function conditionFilter(condition: CompiledCondition | null, caller: Caller): Filter | undefined {
  if (!condition) return undefined;
  return { column: condition.column, value: { kind: 'plain', value: conditionValue(condition, caller) } };
}

function conditionValue(condition: CompiledCondition, caller: Caller): string {
  return condition.equals.kind === 'sub' ? caller.sub : condition.equals.value;
}

/** True when a value written to the condition column keeps the row inside the rule. */
function satisfies(value: SqlValue, expected: string): boolean {
  return value.kind === 'plain' && String(value.value) === expected;
}

/**
 * The columns a caller may name in `where`: the ones its select rule lets it read, plus the
 * condition column of the deciding rule (whose value the caller knows already). A column it
 * cannot read would otherwise be an oracle: `{"affected": 0|1}` of an update or delete filtered
 * on a hidden column tells its value.
 */
function filterable(rule: ServedRule, readable: ServedRule | undefined, column: string): boolean {
  return (readable !== undefined && allows(readable, column)) || rule.condition?.column === column;
}

/** The caller's select rule, if any (without the 403 of `decideRule`): what it may read. */
function readRule(release: ServedRelease, table: string, roles: readonly string[]): ServedRule | undefined {
  const rule = (release.rules.get(table)?.get('select') ?? []).find((r) => roles.some((role) => r.roles.has(role)));
  return rule && rule.invalid === undefined ? rule : undefined;
}

function filtersOf(table: ServedTable, where: ReadonlyArray<readonly [string, unknown]>, rule: ServedRule, readable: ServedRule | undefined): Filter[] {
  return where.map(([name, value]) => {
    const column = columnOf(table, name, 'where');
    if (!filterable(rule, readable, column.name)) throw notAllowed(table, column.name, 'read (nor filtered on)');
    return { column: column.name, value: encodeValue(column, value, 'where') };
  });
}

/**
 * A sort the caller may ask for starts with a column that leads an index (see
 * `ServedTable.orderable`): otherwise every call could be a sort of the whole table. The answer
 * lists the columns this caller may order by, only ones its rule lets it read.
 */
function orderByNotIndexed(table: ServedTable, rule: ServedRule, column: string): UsageError {
  const may = table.columns.map((c) => c.name).filter((c) => table.orderable.has(c) && allows(rule, c));
  const choices = may.length > 0 ? `this key may order table ${table.name} by ${may.join(', ')}` : `this key may read no indexed column of table ${table.name} to order by`;
  return new UsageError(`orderBy must start with an indexed column and ${column} leads no index: ${choices} (later orderBy columns may be any readable column)`, {
    reason: PagingCode.OrderByNotIndexed,
    hint: `to order by ${column}, declare an index that starts with it in the table's schema (indexes: [{ columns: [${column}] }]) and apply a new release`,
  });
}

function invalidAfter(message: string, hint: string, reason: string = PagingCode.InvalidAfter): UsageError {
  return new UsageError(message, { reason, hint });
}

/**
 * `after` → the keyset position and the order it continues. Its columns are exactly the
 * `orderBy` columns (or the id when there is no `orderBy`, which then orders by the id
 * ascending), each checked against the rule like `orderBy`, typed like `where` values, never
 * null. Rows strictly after the position come next: `(a, b) > ($1, $2)` ascending, `<`
 * descending, so an order mixing directions is refused (a row comparison has one direction).
 * The columns must identify a row (contain the primary key or a unique key), be NOT NULL and
 * not timestamps: a tie on the page boundary, a NULL the comparison cannot order, or a position
 * rounded to the millisecond would otherwise skip or repeat rows.
 */
function keysetOf(
  table: ServedTable,
  rule: ServedRule,
  requested: ReadonlyArray<readonly [string, Direction]>,
  raw: ReadonlyArray<readonly [string, unknown]>,
): { orderBy: ReadonlyArray<readonly [string, Direction]>; after: Keyset } {
  // Permission first, for every column named: an unknown column 400, a hidden one 403.
  const given = new Map<string, unknown>();
  for (const [name, value] of raw) {
    const column = columnOf(table, name, 'after');
    if (!allows(rule, column.name)) throw notAllowed(table, column.name, 'read');
    given.set(column.name, value);
  }
  const orderBy: ReadonlyArray<readonly [string, Direction]> = requested.length > 0 ? requested : [[table.id.column, 'asc']];
  if (requested.length === 0 && !allows(rule, table.id.column)) throw notAllowed(table, table.id.column, 'read');
  if (!table.orderable.has(orderBy[0]![0])) throw orderByNotIndexed(table, rule, orderBy[0]![0]);
  const names = orderBy.map(([c]) => c);
  if (given.size !== names.length || names.some((c) => !given.has(c))) {
    throw invalidAfter(
      requested.length > 0 ? `after must name exactly the orderBy columns (${names.join(', ')})` : `without orderBy, after names the id column only (${table.id.column}): pages go by id ascending`,
      'copy these columns from the last row of the previous page',
    );
  }
  const direction = orderBy[0]![1];
  if (orderBy.some(([, d]) => d !== direction)) {
    throw invalidAfter('after needs an orderBy whose columns are all "asc" or all "desc"', 'sort every orderBy column the same way, or page with offset', PagingCode.MixedDirections);
  }
  if (!table.uniqueKeys.some((key) => key.every((c) => given.has(c)))) {
    const id = allows(rule, table.id.column) ? `, e.g. add ${table.id.column} as the last orderBy column` : '';
    throw invalidAfter(`the orderBy columns of a page with after must identify a row (include the primary key or a unique key)${id}`, 'rows that tie on every orderBy column would otherwise be skipped between pages');
  }
  const values = orderBy.map(([name]) => {
    const column = table.columnsByName.get(name)!;
    if (column.nullable) {
      throw invalidAfter(`after cannot page on column ${name}, which may be null`, 'page on NOT NULL columns (declare nullable: false), e.g. the id; or page with offset');
    }
    if (valueClassOf(column) === 'timestamp') {
      // Answers carry timestamps to the millisecond, the database keeps microseconds: a position
      // copied from an answer would repeat or skip the rows of the boundary's millisecond.
      throw invalidAfter(
        `after cannot page on the timestamp column ${name}: answers carry milliseconds, the database microseconds, so rows at a page boundary could repeat or be skipped`,
        'page by the id instead (ulid and uuid_v7 ids sort by creation time), or by another indexed NOT NULL column',
      );
    }
    return { column: name, value: encodeValue(column, given.get(name), 'after') };
  });
  return { orderBy, after: { direction, values } };
}

/** Plans one call for a caller against a served release. */
export function planCall(release: ServedRelease, call: CallRequest, caller: Caller): QueryPlan {
  const table = release.tables.get(call.table);
  if (!table) throw new NotFoundError(`table ${call.table} does not exist in release ${release.id}`, { reason: 'UnknownTable' });
  const rule = decideRule(release, table.name, call.op, caller.roles);
  const p = call.params;
  const condition = conditionFilter(rule.condition, caller);

  switch (call.op) {
    case 'select': {
      // select, where and orderBy may only name columns the rule lets the caller read.
      const columns =
        p.select === undefined
          ? readableColumnsOf(table, rule)
          : p.select.map((name) => {
              const column = columnOf(table, name, 'select');
              if (!allows(rule, column.name)) throw notAllowed(table, column.name, 'read');
              return column.name;
            });
      if (columns.length === 0) throw new ForbiddenError(`the rule for these roles lets them read no column of table ${table.name}`, { reason: PermissionCode.ColumnNotAllowed });
      const filters = filtersOf(table, p.where ?? [], rule, rule);
      let orderBy: ReadonlyArray<readonly [string, Direction]> = (p.orderBy ?? []).map(([name, dir]) => {
        const column = columnOf(table, name, 'orderBy');
        if (!allows(rule, column.name)) throw notAllowed(table, column.name, 'read');
        return [column.name, dir] as const;
      });
      let after: Keyset | null = null;
      if (p.after !== undefined) {
        ({ orderBy, after } = keysetOf(table, rule, orderBy, p.after));
      } else if (orderBy.length > 0 && !table.orderable.has(orderBy[0]![0])) {
        throw orderByNotIndexed(table, rule, orderBy[0]![0]);
      }
      return { kind: 'select', table, columns, filters: condition ? [...filters, condition] : filters, orderBy, after, limit: p.limit ?? MAX_LIMIT, offset: p.offset ?? 0 };
    }

    case 'insert': {
      const id = table.id;
      const values: Array<readonly [string, SqlValue]> = [];
      let hasId = false;
      for (const [name, raw] of p.data ?? []) {
        const column = columnOf(table, name, 'data');
        const value = encodeValue(column, raw, 'data');
        if (column.name === id.column) {
          if (id.generate !== 'client') {
            throw new UsageError(`table ${table.name} generates ${id.column} (${id.generate}): leave it out of data`, { reason: CallErrorCode.IdGenerated });
          }
          hasId = true;
          // Under the `client` policy the id is the row's identity, not a data column: always writable.
        } else if (!allows(rule, column.name)) {
          throw notAllowed(table, column.name, 'written');
        }
        values.push([column.name, value]);
      }
      if (id.generate === 'client' && !hasId) throw new UsageError(`table ${table.name} takes its ${id.column} from the caller: put it in data`, { reason: CallErrorCode.IdRequired });
      const generated = generateId(id.generate);
      if (generated !== undefined) values.unshift([id.column, { kind: 'plain', value: generated }]);
      if (rule.condition) {
        const expected = conditionValue(rule.condition, caller);
        const given = values.find(([c]) => c === rule.condition!.column);
        if (given && !satisfies(given[1], expected)) {
          throw new ForbiddenError(`data.${rule.condition.column} must satisfy the rule's condition on table ${table.name}`, { reason: PermissionCode.ConditionViolated });
        }
        if (!given) values.push([rule.condition.column, { kind: 'plain', value: expected }]);
      }
      // The answer carries the row's id (its handle) and the written values the caller may read:
      // what the database stored (defaults, triggers, normalised types) is not echoed past the rule.
      const readable = readRule(release, table.name, caller.roles);
      const returning = [id.column, ...values.map(([c]) => c).filter((c) => c !== id.column && readable !== undefined && allows(readable, c))];
      return { kind: 'insert', table, values, returning };
    }

    case 'update': {
      const set = (p.data ?? []).map(([name, raw]) => {
        const column = columnOf(table, name, 'data');
        const value = encodeValue(column, raw, 'data');
        if (!allows(rule, column.name)) throw notAllowed(table, column.name, 'written');
        if (rule.condition && column.name === rule.condition.column && !satisfies(value, conditionValue(rule.condition, caller))) {
          throw new ForbiddenError(`data.${column.name} must satisfy the rule's condition on table ${table.name}`, { reason: PermissionCode.ConditionViolated });
        }
        return [column.name, value] as const;
      });
      const filters = filtersOf(table, p.where ?? [], rule, readRule(release, table.name, caller.roles));
      return { kind: 'update', table, set, filters: condition ? [...filters, condition] : filters };
    }

    case 'delete': {
      const filters = filtersOf(table, p.where ?? [], rule, readRule(release, table.name, caller.roles));
      return { kind: 'delete', table, filters: condition ? [...filters, condition] : filters };
    }
  }
}
