import { describe, expect, test } from 'vitest';
import { ConflictError, ForbiddenError, InternalError, UnavailableError, ValidationError } from '../errors.ts';
import { mapDatabaseError } from './pg-errors.ts';

function pgError(code: string, fields: Record<string, string> = {}): Error {
  // the message deliberately says something misleading: mapping must look at the code only
  return Object.assign(new Error('unique violation of row (secret@example.com)'), { name: 'PostgresError', code, ...fields });
}

describe('mapDatabaseError', () => {
  test.each([
    ['55P03', UnavailableError, 'LockTimeout', true],
    ['57014', UnavailableError, 'StatementTimeout', true],
    ['40P01', UnavailableError, 'Conflict', true],
    ['08006', UnavailableError, 'ConnectionFailed', true],
    ['53300', UnavailableError, 'ConnectionFailed', true],
    ['53200', UnavailableError, 'InsufficientResources', false],
    ['28P01', UnavailableError, 'ConnectionFailed', false],
    ['42501', ForbiddenError, 'Forbidden', false],
    ['23502', ConflictError, 'SchemaApplyFailed', false],
    ['23505', ConflictError, 'SchemaApplyFailed', false],
    ['22P02', ConflictError, 'SchemaApplyFailed', false],
    ['2BP01', ConflictError, 'SchemaApplyFailed', false],
    ['42P07', ConflictError, 'SchemaApplyFailed', false],
    ['42804', ValidationError, 'ValidationFailed', false],
    ['XX000', InternalError, 'InternalError', true],
  ] as const)('SQLSTATE %s → %s (%s)', (code, type, reason, retryable) => {
    const err = mapDatabaseError(pgError(code), 'step 1');
    expect(err).toBeInstanceOf(type);
    expect(err.reason).toBe(reason);
    expect(err.retryable).toBe(retryable);
  });

  test('messages name the step, the condition and objects, never the server text (which can hold values)', () => {
    const err = mapDatabaseError(pgError('23502', { table_name: 'books', column_name: 'pages' }), 'connection main: step 3 failed');
    expect(err.message).toBe('connection main: step 3 failed: not_null_violation (SQLSTATE 23502) on books.pages');
    expect(err.message).not.toContain('secret');
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  test('driver connection failures are unavailable; our own errors pass through; anything else is internal', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(mapDatabaseError(refused, 'x')).toBeInstanceOf(UnavailableError);
    const own = new ConflictError('already');
    expect(mapDatabaseError(own, 'x')).toBe(own);
    expect(mapDatabaseError(new TypeError('boom'), 'x')).toBeInstanceOf(InternalError);
  });
});
