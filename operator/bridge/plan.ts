import { ForbiddenError, NotFoundError, UsageError } from '../../core/errors.ts';
import type { CompiledCondition, Operation } from '../../core/permissions/policy.ts';
import { generateId } from './ids.ts';
import { CallErrorCode, MAX_LIMIT, shownName, type CallRequest, type Direction } from './call.ts';
import type { ServedRelease, ServedRule, ServedTable } from './served-release.ts';
import { encodeValue, type SqlValue } from './values.ts';

/**
 * A call → a query plan: the permission decision, every column checked against the release IR and
 * the rule, every value checked against its column's type, the rule's condition turned into a
 * bound predicate. Pure: the plan is data; `execute.ts` turns it into parameterised SQL.
 *
 * Decision order (first failure wins): unknown table 404 → no rule for the caller's roles 403 →
 * an unenforceable rule 400 → unknown column or bad value 400 → a column the rule does not allow 403.
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
      readonly limit: number;
      readonly offset: number;
    }
  | { readonly kind: 'insert'; readonly table: ServedTable; readonly values: ReadonlyArray<readonly [string, SqlValue]>; readonly returning: readonly string[] }
  | { readonly kind: 'update'; readonly table: ServedTable; readonly set: ReadonlyArray<readonly [string, SqlValue]>; readonly filters: readonly Filter[] }
  | { readonly kind: 'delete'; readonly table: ServedTable; readonly filters: readonly Filter[] };

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
      const orderBy = (p.orderBy ?? []).map(([name, dir]) => {
        const column = columnOf(table, name, 'orderBy');
        if (!allows(rule, column.name)) throw notAllowed(table, column.name, 'read');
        return [column.name, dir] as const;
      });
      return { kind: 'select', table, columns, filters: condition ? [...filters, condition] : filters, orderBy, limit: p.limit ?? MAX_LIMIT, offset: p.offset ?? 0 };
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
