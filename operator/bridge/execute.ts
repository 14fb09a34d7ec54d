import type postgres from 'postgres';
import {
  ConflictError,
  InternalError,
  UnavailableError,
  UsageError,
  ValidationError,
  isSantokitError,
  type SantokitError,
} from '../../core/errors.ts';
import { TABLE_SCHEMA } from '../../core/schema/names.ts';
import type { Filter, Keyset, QueryPlan } from './plan.ts';
import type { SqlValue } from './values.ts';

/**
 * A query plan → one parameterised statement. Identifiers come only from the release IR and are
 * quoted here (`"name"`, inner quotes doubled); every value is a bound parameter. One statement
 * per call, so no transaction is needed.
 *
 * The text is built directly: cheaper per call than composing nested template fragments. Statements are prepared server-side and reused by the driver per connection,
 * but only for the first `MAX_PREPARED_SHAPES` distinct statement shapes a pool sees: each
 * distinct column list, filter set or ordering is a shape, and a caller could otherwise make every
 * connection hold an unbounded number of prepared statements. Later shapes run unnamed
 * (parsed per call), which is correct, only slower.
 */

type Sql = postgres.Sql;

/** Distinct statement shapes a pool prepares server-side; past this they run unprepared. */
export const MAX_PREPARED_SHAPES = 256;

const preparedShapes = new WeakMap<Sql, Set<string>>();

/** Whether a statement of this text (and parameter kinds) is prepared on `sql`'s connections. */
function shouldPrepare(sql: Sql, text: string, params: readonly unknown[]): boolean {
  let shapes = preparedShapes.get(sql);
  if (!shapes) preparedShapes.set(sql, (shapes = new Set()));
  let key = text;
  for (const p of params) key += p === null ? ':n' : typeof p === 'object' ? ':o' : `:${(typeof p)[0]}`;
  if (shapes.has(key)) return true;
  if (shapes.size >= MAX_PREPARED_SHAPES) return false;
  shapes.add(key);
  return true;
}

/** A quoted identifier; names come from the release IR, quotes are doubled anyway. */
export function quote(name: string): string {
  return name.includes('"') ? `"${name.replace(/"/g, '""')}"` : `"${name}"`;
}

function param(sql: Sql, value: SqlValue): unknown {
  switch (value.kind) {
    case 'plain':
      return value.value;
    case 'bytes':
      return value.value;
    case 'json':
      return sql.json(value.value as postgres.JSONValue);
    case 'null':
      return null;
  }
}

function whereClause(sql: Sql, filters: readonly Filter[], params: unknown[]): string {
  if (filters.length === 0) return '';
  let text = ' WHERE ';
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    if (i > 0) text += ' AND ';
    if (f.value.kind === 'null') text += `${quote(f.column)} IS NULL`;
    else {
      params.push(param(sql, f.value));
      text += `${quote(f.column)} = $${params.length}`;
    }
  }
  return text;
}

/**
 * Rows strictly after a keyset position: a row comparison, `("a", "b") > ($1, $2)` (`<` when
 * descending), which an index on (a, b) answers directly. The columns are part of the statement's
 * shape, the values are parameters.
 */
function keysetPredicate(sql: Sql, keyset: Keyset, params: unknown[]): string {
  const op = keyset.direction === 'asc' ? '>' : '<';
  if (keyset.values.length === 1) {
    const only = keyset.values[0]!;
    params.push(param(sql, only.value));
    return `${quote(only.column)} ${op} $${params.length}`;
  }
  const placeholders = keyset.values.map((f) => (params.push(param(sql, f.value)), `$${params.length}`));
  return `(${keyset.values.map((f) => quote(f.column)).join(', ')}) ${op} (${placeholders.join(', ')})`;
}

/** bytea values leave as base64 strings (JSON has no bytes). */
function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const k in row) {
    const v = row[k];
    if (Buffer.isBuffer(v)) row[k] = v.toString('base64');
  }
  return row;
}

/** `SELECT <columns> FROM <table>` per column list (a select without `select` reuses its rule's list). */
const selectHeads = new WeakMap<readonly string[], string>();

/** The statement text and parameters of a plan. */
export function statementOf(sql: Sql, plan: QueryPlan): { text: string; params: unknown[] } {
  // Table names are plain identifiers (no dots): "public"."users".
  const table = `${quote(TABLE_SCHEMA)}.${quote(plan.table.name)}`;
  const params: unknown[] = [];
  switch (plan.kind) {
    case 'select': {
      let head = selectHeads.get(plan.columns);
      if (head === undefined) selectHeads.set(plan.columns, (head = `SELECT ${plan.columns.map(quote).join(', ')} FROM ${table}`));
      let text = head + whereClause(sql, plan.filters, params);
      if (plan.after !== null) text += (plan.filters.length > 0 ? ' AND ' : ' WHERE ') + keysetPredicate(sql, plan.after, params);
      if (plan.orderBy.length > 0) text += ` ORDER BY ${plan.orderBy.map(([c, d]) => `${quote(c)} ${d === 'asc' ? 'ASC' : 'DESC'}`).join(', ')}`;
      params.push(plan.limit, plan.offset);
      text += ` LIMIT $${params.length - 1} OFFSET $${params.length}`;
      return { text, params };
    }
    case 'insert': {
      const returning = ` RETURNING ${plan.returning.map(quote).join(', ')}`;
      if (plan.values.length === 0) return { text: `INSERT INTO ${table} DEFAULT VALUES${returning}`, params };
      const placeholders = plan.values.map(([, v]) => (params.push(param(sql, v)), `$${params.length}`));
      return { text: `INSERT INTO ${table} (${plan.values.map(([c]) => quote(c)).join(', ')}) VALUES (${placeholders.join(', ')})${returning}`, params };
    }
    case 'update': {
      const assignments = plan.set.map(([c, v]) => (params.push(param(sql, v)), `${quote(c)} = $${params.length}`));
      return { text: `UPDATE ${table} SET ${assignments.join(', ')}${whereClause(sql, plan.filters, params)}`, params };
    }
    case 'delete':
      return { text: `DELETE FROM ${table}${whereClause(sql, plan.filters, params)}`, params };
  }
}

/**
 * Runs a plan and answers with the JSON text of `data`; errors come back mapped by SQLSTATE (see
 * `callDatabaseError`). A select's rows are serialized one by one as the driver reads them, so
 * no list of rows is kept beside the text, and the answer is capped at `maxResponseBytes`: past
 * it the call is refused with how many rows fit (never a partial answer that looks whole, never
 * a string past what the runtime can build). A row that cannot be serialized is an error of the
 * call, not of the process.
 */
export async function executePlan(sql: Sql, plan: QueryPlan, maxResponseBytes: number): Promise<string> {
  const { text, params } = statementOf(sql, plan);
  const query = () => sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: shouldPrepare(sql, text, params) });
  try {
    switch (plan.kind) {
      case 'select': {
        let answer = '[';
        let bytes = 2;
        let fitted = 0;
        let refused: 'size' | 'unserializable' | undefined;
        // This callback runs inside the driver's socket handler: it must never throw.
        await query().forEach((row) => {
          if (refused) return;
          let json: string;
          try {
            json = JSON.stringify(jsonRow(row as Record<string, unknown>));
          } catch {
            refused = 'unserializable';
            answer = '';
            return;
          }
          const size = Buffer.byteLength(json) + (fitted === 0 ? 0 : 1);
          if (bytes + size > maxResponseBytes) {
            refused = 'size';
            answer = '';
            return;
          }
          bytes += size;
          answer += fitted === 0 ? json : `,${json}`;
          fitted++;
        });
        if (refused === 'size') throw responseTooLarge(plan.table.name, maxResponseBytes, fitted);
        if (refused) throw new InternalError(`a row of table ${plan.table.name} cannot be answered as JSON`, { reason: 'Unserializable' });
        return `${answer}]`;
      }
      case 'insert': {
        const result = await query();
        return JSON.stringify(jsonRow((result[0] ?? {}) as Record<string, unknown>));
      }
      case 'update':
      case 'delete': {
        const result = await query();
        return `{"affected":${result.count}}`;
      }
    }
  } catch (err) {
    throw callDatabaseError(err, plan.table.name);
  }
}

function responseTooLarge(table: string, max: number, fitted: number): UsageError {
  return new UsageError(`the answer from table ${table} would exceed ${max} bytes (${fitted} row${fitted === 1 ? '' : 's'} fit)`, {
    reason: 'ResponseTooLarge',
    hint:
      fitted > 0
        ? `select fewer columns, or page: limit ${fitted} with orderBy on an indexed column (e.g. the id) and after set to the last row's orderBy values (or offset 0, ${fitted}, ${2 * fitted}, … up to 10000)`
        : 'select fewer columns: one row alone is larger than the limit',
  });
}

interface PgErrorFields {
  code?: string;
  table_name?: string;
  column_name?: string;
  constraint_name?: string;
}

/**
 * A database error → the error hierarchy, by SQLSTATE only. Messages name the table, column or
 * constraint the server reports and never quote the server's message, which can carry values.
 */
export function callDatabaseError(err: unknown, table: string): SantokitError {
  if (isSantokitError(err)) return err;
  const e = (err ?? {}) as PgErrorFields & { name?: string };
  const code = typeof e.code === 'string' ? e.code : '';
  const isServer = (err as { name?: string } | null)?.name === 'PostgresError';
  const column = e.column_name ? ` (column ${e.column_name})` : '';
  const constraint = e.constraint_name ? ` (constraint ${e.constraint_name})` : '';
  const options = { cause: err };
  if (isServer) {
    // Neither answer names the constraint, its columns or the other row: a caller learns that its
    // write collides, never which value of which (possibly hidden) row it collides with.
    if (code === '23505') return new ConflictError(`the write conflicts with an existing row of table ${table} (a unique constraint)`, { ...options, reason: 'UniqueViolation' });
    if (code === '23503') return new ValidationError(`the write to table ${table} breaks a reference between rows (a foreign key)`, [], { ...options, reason: 'ForeignKeyViolation' });
    if (code === '23514') return new ValidationError(`the row of table ${table} fails a check${constraint}`, [], { ...options, reason: 'CheckViolation' });
    if (code === '23502') return new UsageError(`a value of table ${table} may not be null${column}`, { ...options, reason: 'NotNullViolation' });
    if (code.startsWith('22')) return new UsageError(`a value for table ${table} is not valid for its column type (SQLSTATE ${code})${column}`, { ...options, reason: 'InvalidValue' });
    if (code.startsWith('23')) return new ConflictError(`the change to table ${table} violates a constraint (SQLSTATE ${code})${constraint}`, { ...options, reason: 'ConstraintViolation' });
    if (code === '40001' || code === '40P01') return new UnavailableError(`the database aborted the statement on table ${table} (SQLSTATE ${code}); retry`, { ...options, reason: 'SerializationFailure' });
    if (code === '57014') return new UnavailableError(`the statement on table ${table} ran past the statement timeout`, { ...options, reason: 'StatementTimeout' });
    if (code === '55P03') return new UnavailableError(`a lock on table ${table} was not available`, { ...options, reason: 'LockTimeout' });
    if (code.startsWith('08') || code.startsWith('53') || code.startsWith('57P')) return new UnavailableError(`the database is unavailable (SQLSTATE ${code})`, { ...options, reason: 'DatabaseUnavailable' });
    if (code.startsWith('42')) {
      // undefined table/column, privileges: the database does not match the release, or the role is too weak.
      return new InternalError(`the database rejected a statement on table ${table} (SQLSTATE ${code}): does it still match the release?`, { ...options, reason: 'DatabaseMismatch' });
    }
    return new InternalError(`the database failed a statement on table ${table} (SQLSTATE ${code || 'unknown'})`, { ...options, reason: 'DatabaseError' });
  }
  // Driver-side failures: no server reached, connection lost, bad parameters.
  if (/^(ECONN|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EPIPE|EAI_AGAIN|CONNECT_TIMEOUT|CONNECTION_)/.test(code)) {
    return new UnavailableError(`the database of table ${table} is unreachable (${code})`, { ...options, reason: 'DatabaseUnavailable' });
  }
  return new InternalError(`the statement on table ${table} failed (${code || 'driver error'})`, { ...options, reason: 'DatabaseError' });
}
