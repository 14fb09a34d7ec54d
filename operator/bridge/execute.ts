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
import type { Filter, QueryPlan } from './plan.ts';
import type { SqlValue } from './values.ts';

/**
 * A query plan → one parameterised statement through porsager's tagged templates. Identifiers
 * come only from the release IR and go through `sql(name)` (quoted); every value is a bound
 * parameter. One statement per call, so no transaction is needed. Prepared statements are reused
 * across calls of the same shape.
 */

type Sql = postgres.Sql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** What a call answers under `data`. */
export type CallResult = Array<Record<string, unknown>> | Record<string, unknown> | { affected: number };

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

function join(sql: Sql, parts: readonly Fragment[], separator: 'AND' | ','): Fragment {
  return parts.slice(1).reduce((acc, part) => (separator === 'AND' ? sql`${acc} AND ${part}` : sql`${acc}, ${part}`), parts[0]!);
}

function identifiers(sql: Sql, names: readonly string[]): Fragment {
  return join(
    sql,
    names.map((n) => sql`${sql(n)}`),
    ',',
  );
}

function whereClause(sql: Sql, filters: readonly Filter[]): Fragment {
  if (filters.length === 0) return sql``;
  const predicates = filters.map((f) => (f.value.kind === 'null' ? sql`${sql(f.column)} IS NULL` : sql`${sql(f.column)} = ${param(sql, f.value) as never}`));
  return sql`WHERE ${join(sql, predicates, 'AND')}`;
}

/** bytea values leave as base64 strings (JSON has no bytes). */
function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(row)) if (Buffer.isBuffer(v)) row[k] = v.toString('base64');
  return row;
}

/** Runs a plan; errors come back mapped by SQLSTATE (see `callDatabaseError`). */
export async function executePlan(sql: Sql, plan: QueryPlan): Promise<CallResult> {
  // Table names are plain identifiers (no dots), so `schema.table` quotes as "public"."users".
  const table = sql(`${TABLE_SCHEMA}.${plan.table.name}`);
  try {
    switch (plan.kind) {
      case 'select': {
        const order = plan.orderBy.length === 0 ? sql`` : sql`ORDER BY ${join(sql, plan.orderBy.map(([c, d]) => (d === 'asc' ? sql`${sql(c)} ASC` : sql`${sql(c)} DESC`)), ',')}`;
        const rows = await sql`SELECT ${identifiers(sql, plan.columns)} FROM ${table} ${whereClause(sql, plan.filters)} ${order} LIMIT ${plan.limit} OFFSET ${plan.offset}`;
        return rows.map((r) => jsonRow(r as Record<string, unknown>));
      }
      case 'insert': {
        const returning = identifiers(sql, plan.returning);
        const rows =
          plan.values.length === 0
            ? await sql`INSERT INTO ${table} DEFAULT VALUES RETURNING ${returning}`
            : await sql`INSERT INTO ${table} (${identifiers(
                sql,
                plan.values.map(([c]) => c),
              )}) VALUES (${join(
                sql,
                plan.values.map(([, v]) => sql`${param(sql, v) as never}`),
                ',',
              )}) RETURNING ${returning}`;
        return jsonRow((rows[0] ?? {}) as Record<string, unknown>);
      }
      case 'update': {
        const assignments = join(
          sql,
          plan.set.map(([c, v]) => sql`${sql(c)} = ${param(sql, v) as never}`),
          ',',
        );
        const result = await sql`UPDATE ${table} SET ${assignments} ${whereClause(sql, plan.filters)}`;
        return { affected: result.count };
      }
      case 'delete': {
        const result = await sql`DELETE FROM ${table} ${whereClause(sql, plan.filters)}`;
        return { affected: result.count };
      }
    }
  } catch (err) {
    throw callDatabaseError(err, plan.table.name);
  }
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
    if (code === '23505') return new ConflictError(`a row of table ${table} with the same unique value already exists${constraint}`, { ...options, reason: 'UniqueViolation' });
    if (code === '23503') return new ValidationError(`the row of table ${table} refers to a row that does not exist, or is still referred to${constraint}`, [], { ...options, reason: 'ForeignKeyViolation' });
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
