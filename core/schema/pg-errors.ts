import {
  ConflictError,
  ForbiddenError,
  InternalError,
  UnavailableError,
  ValidationError,
  isSantokitError,
  type SantokitError,
} from '../errors.ts';

/**
 * Postgres errors → the project's error hierarchy, by SQLSTATE (never by message text). Messages are
 * built from the condition name and the object names the server reports (table, column,
 * constraint) — never from the server's message, which can quote row values.
 */

const CONDITIONS: Readonly<Record<string, string>> = {
  '23502': 'not_null_violation',
  '23503': 'foreign_key_violation',
  '23505': 'unique_violation',
  '23514': 'check_violation',
  '23P01': 'exclusion_violation',
  '22P02': 'invalid_text_representation',
  '22003': 'numeric_value_out_of_range',
  '22001': 'string_data_right_truncation',
  '2BP01': 'dependent_objects_still_exist',
  '40001': 'serialization_failure',
  '40P01': 'deadlock_detected',
  '42501': 'insufficient_privilege',
  '42701': 'duplicate_column',
  '42703': 'undefined_column',
  '42704': 'undefined_object',
  '42710': 'duplicate_object',
  '42P01': 'undefined_table',
  '42P07': 'duplicate_table',
  '42P16': 'invalid_table_definition',
  '42804': 'datatype_mismatch',
  '42846': 'cannot_coerce',
  '53100': 'disk_full',
  '53200': 'out_of_memory',
  '53300': 'too_many_connections',
  '55P03': 'lock_not_available',
  '57014': 'query_canceled',
  '57P01': 'admin_shutdown',
  '57P03': 'cannot_connect_now',
  '28000': 'invalid_authorization_specification',
  '28P01': 'invalid_password',
};

/** Client-side failures of the driver that mean the server could not be reached or went away. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']);

interface PgErrorFields {
  readonly code: string;
  readonly table_name?: string;
  readonly column_name?: string;
  readonly constraint_name?: string;
}

export function isPostgresError(err: unknown): err is Error & PgErrorFields {
  return err instanceof Error && err.name === 'PostgresError' && typeof (err as { code?: unknown }).code === 'string';
}

function objectNames(err: PgErrorFields): string {
  const parts: string[] = [];
  if (err.table_name) parts.push(err.column_name ? `${err.table_name}.${err.column_name}` : err.table_name);
  else if (err.column_name) parts.push(err.column_name);
  if (err.constraint_name) parts.push(`constraint ${err.constraint_name}`);
  return parts.length === 0 ? '' : ` on ${parts.join(', ')}`;
}

/** Maps anything a database call threw; `context` says what was being done ("step 3 (…) failed"). */
export function mapDatabaseError(err: unknown, context: string): SantokitError {
  if (isSantokitError(err)) return err;
  if (isPostgresError(err)) {
    const code = err.code;
    const what = `${context}: ${CONDITIONS[code] ?? 'database error'} (SQLSTATE ${code})${objectNames(err)}`;
    const options = { cause: err };
    if (code === '55P03') return new UnavailableError(what, { ...options, reason: 'LockTimeout', hint: 'another session holds a lock on the table; retry later or raise the lock timeout' });
    if (code === '57014') return new UnavailableError(what, { ...options, reason: 'StatementTimeout', hint: 'a statement ran longer than the statement timeout; raise it or apply when the database is quieter' });
    if (code === '40001' || code === '40P01') return new UnavailableError(what, { ...options, reason: 'Conflict' });
    if (code === '53200') {
      // "out of shared memory" in DDL: one transaction holds a lock per table and index it creates
      return new UnavailableError(what, {
        ...options,
        reason: 'InsufficientResources',
        retryable: false,
        hint: 'the transaction needs more locks than the server allows: raise max_locks_per_transaction, or apply the schema in smaller releases',
      });
    }
    if (code === '53100') return new UnavailableError(what, { ...options, reason: 'InsufficientResources', retryable: false, hint: 'the database server is out of disk space' });
    if (code.startsWith('08') || code.startsWith('53') || code === '57P01' || code === '57P02' || code === '57P03') {
      return new UnavailableError(what, { ...options, reason: 'ConnectionFailed' });
    }
    if (code.startsWith('28')) return new UnavailableError(what, { ...options, reason: 'ConnectionFailed', retryable: false, hint: 'check the credentials of the Connection' });
    if (code === '42501') return new ForbiddenError(what, { ...options, hint: 'the database role of this Connection may not run this change' });
    if (code.startsWith('23') || code.startsWith('22')) {
      return new ConflictError(what, { ...options, reason: 'SchemaApplyFailed', hint: 'the data in the database does not allow this change; fix the data or the declaration' });
    }
    if (code === '2BP01') return new ConflictError(what, { ...options, reason: 'SchemaApplyFailed', hint: 'another object (perhaps one Santokit does not manage) depends on it' });
    if (code === '42P07' || code === '42701' || code === '42710') return new ConflictError(what, { ...options, reason: 'SchemaApplyFailed', hint: 'an object of that name already exists' });
    if (code === '42804' || code === '42846') return new ValidationError(what, [], { ...options, hint: 'Postgres cannot convert the column to the declared type' });
    return new InternalError(what, options);
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) {
    return new UnavailableError(`${context}: database unreachable (${code})`, { cause: err, reason: 'ConnectionFailed' });
  }
  return new InternalError(`${context}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
