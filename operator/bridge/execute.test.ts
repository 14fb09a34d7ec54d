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

  it('a unique or foreign-key violation names neither the constraint nor its columns (they would confirm a hidden row\'s value)', () => {
    const unique = callDatabaseError(pgError('23505', { constraint_name: 'users_email_key', column_name: 'email' }), 'users').message;
    expect(unique).toBe('the write conflicts with an existing row of table users (a unique constraint)');
    const fk = callDatabaseError(pgError('23503', { constraint_name: 'orders_user_id_fkey', column_name: 'user_id' }), 'orders').message;
    expect(fk).not.toMatch(/fkey|user_id/);
  });

  it('driver-side connection failures are 503', () => {
    expect(callDatabaseError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'users')).toMatchObject({ status: 503, reason: 'DatabaseUnavailable' });
    expect(callDatabaseError(Object.assign(new Error('x'), { code: 'CONNECTION_DESTROYED' }), 'users')).toMatchObject({ status: 503 });
  });
});
