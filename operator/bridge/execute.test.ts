import { describe, expect, it } from 'vitest';
import { ConflictError, InternalError, UnavailableError, UsageError, ValidationError } from '../../core/errors.ts';
import postgres from 'postgres';
import { compilePermissions } from '../../core/permissions/policy.ts';
import { declareSchema, parseSchemaFiles } from '../../core/schema/index.ts';
import { parseCall } from './call.ts';
import { callDatabaseError, statementOf } from './execute.ts';
import { planCall } from './plan.ts';
import { compileServedRelease } from './served-release.ts';

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

describe('keyset statements', () => {
  const schema = declareSchema(
    parseSchemaFiles([{ path: 'schema/app.yaml', text: 'version: 1\ntables:\n  posts:\n    id: { generate: ulid }\n    columns:\n      n: { type: int, nullable: false }\n      owner: { type: string }\n    indexes:\n      - { columns: [n, id] }\n' }]),
  );
  const release = compileServedRelease('rel-k', schema, compilePermissions({ path: 'config/permissions.yaml', text: "tables:\n  posts:\n    select: { roles: [r], condition: 'resource.owner == request.auth.sub' }\n" }, schema));
  // never connects: statementOf only builds text and parameters
  const sql = postgres('postgres://nobody@127.0.0.1:1/none');
  const statement = (params: unknown) => statementOf(sql, planCall(release, parseCall({ path: 'db/posts/select', params }), { sub: 'me', roles: ['r'] }));

  it('a row comparison after the filters, values as parameters, in the order of orderBy', () => {
    expect(statement({ orderBy: { n: 'desc', id: 'desc' }, after: { id: 'x', n: 7 }, limit: 10 })).toEqual({
      text: 'SELECT "id", "n", "owner" FROM "public"."posts" WHERE "owner" = $1 AND ("n", "id") < ($2, $3) ORDER BY "n" DESC, "id" DESC LIMIT $4 OFFSET $5',
      params: ['me', 7, 'x', 10, 0],
    });
  });

  it('after alone pages by the id ascending', () => {
    expect(statement({ after: { id: "x' OR 1=1 --" } })).toEqual({
      text: 'SELECT "id", "n", "owner" FROM "public"."posts" WHERE "owner" = $1 AND "id" > $2 ORDER BY "id" ASC LIMIT $3 OFFSET $4',
      params: ['me', "x' OR 1=1 --", 1000, 0],
    });
  });

  it('different positions are one statement shape: only the parameters differ', () => {
    const a = statement({ orderBy: { n: 'asc', id: 'asc' }, after: { n: 1, id: 'a' } });
    const b = statement({ orderBy: { n: 'asc', id: 'asc' }, after: { n: 2, id: 'b' } });
    expect(a.text).toBe(b.text);
  });
});
