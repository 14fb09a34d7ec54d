import { describe, expect, it } from 'vitest';
import { ConflictError, InternalError, UnavailableError, UsageError, ValidationError } from '../../core/errors.ts';
import { callDatabaseError } from './execute.ts';

function pgError(code: string, fields: Record<string, string> = {}): Error {
  // the server's message quotes a value: the mapping must never repeat it
  return Object.assign(new Error('Key (email)=(secret@example.com) already exists.'), { name: 'PostgresError', code, ...fields });
}

describe('callDatabaseError maps by SQLSTATE', () => {
  it.each([
    ['23505', ConflictError, 409, 'UniqueViolation'],
    ['23503', ValidationError, 422, 'ForeignKeyViolation'],
    ['23514', ValidationError, 422, 'CheckViolation'],
    ['23502', UsageError, 400, 'NotNullViolation'],
    ['22P02', UsageError, 400, 'InvalidValue'],
    ['22003', UsageError, 400, 'InvalidValue'],
    ['22007', UsageError, 400, 'InvalidValue'],
    ['40001', UnavailableError, 503, 'SerializationFailure'],
    ['40P01', UnavailableError, 503, 'SerializationFailure'],
    ['57014', UnavailableError, 503, 'StatementTimeout'],
    ['08006', UnavailableError, 503, 'DatabaseUnavailable'],
    ['53300', UnavailableError, 503, 'DatabaseUnavailable'],
    ['42703', InternalError, 500, 'DatabaseMismatch'],
    ['XX000', InternalError, 500, 'DatabaseError'],
  ] as const)('%s → %s %i %s', (code, type, status, reason) => {
    const err = callDatabaseError(pgError(code, { table_name: 'users', constraint_name: 'users_email_key' }), 'users');
    expect(err).toBeInstanceOf(type);
    expect(err.status).toBe(status);
    expect(err.reason).toBe(reason);
    expect(err.message).not.toContain('secret@example.com');
  });

  it('names the constraint the server reports', () => {
    expect(callDatabaseError(pgError('23505', { constraint_name: 'users_email_key' }), 'users').message).toBe('a row of table users with the same unique value already exists (constraint users_email_key)');
  });

  it('driver-side connection failures are 503', () => {
    expect(callDatabaseError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'users')).toMatchObject({ status: 503, reason: 'DatabaseUnavailable' });
    expect(callDatabaseError(Object.assign(new Error('x'), { code: 'CONNECTION_DESTROYED' }), 'users')).toMatchObject({ status: 503 });
  });
});
