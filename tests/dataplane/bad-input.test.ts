import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { OperatorProcess } from '../support/cluster.ts';
import { call, callRaw, createApiKey, createDataplaneProject, dataOf, startBridge, startDataplaneOperator, waitServable, type ApiKey, type BridgeProcess, type DataplaneProject } from './support.ts';

/**
 * The bad-input corpus: malformed JSON, wrong types, huge bodies, SQL-looking strings in keys,
 * paths, headers and values. Every answer is a 4xx in the error envelope, the database is
 * unchanged, and the process stays up and keeps serving.
 *
 * The operator and the data plane are shared by the file; each case has its own project,
 * database, API key and seed rows, so a case runs alone (`-t`) and one cannot disturb another.
 */

const schema = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false, unique: true }
      name: { type: string }
      age: { type: int }
      active: { type: boolean, nullable: false, default: true }
      settings: { type: json }
`;
const permissions = `tables:
  users:
    select: { roles: [admin] }
    insert: { roles: [admin] }
    update: { roles: [admin] }
    delete: { roles: [admin] }
`;

const sqlish = ["'; DROP TABLE users; --", '" OR ""="', '1 OR 1=1', 'name); DELETE FROM users; --', '$1', '\\x00', 'users"."email'];
const MiB = 1024 * 1024;

/** Bodies that must each be refused with a 4xx (sent with a valid key). */
function corpus(): Array<[string, string | Uint8Array]> {
  const body = (v: unknown) => JSON.stringify(v);
  const cases: Array<[string, string | Uint8Array]> = [
    ['empty body', ''],
    ['truncated JSON', '{"path":"db/users/select"'],
    ['JSON with a trailing comma', '{"path":"db/users/select",}'],
    ['a bare string', '"db/users/select"'],
    ['a number', '42'],
    ['null', 'null'],
    ['an array', '[{"path":"db/users/select"}]'],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
    ['a NUL byte', '{"path":"db/users/select\u0000"}'],
    ['deeply nested arrays', `${'['.repeat(50_000)}${']'.repeat(50_000)}`],
    ['deeply nested where value', body({ path: 'db/users/select', params: { where: { name: JSON.parse(`${'['.repeat(2000)}${']'.repeat(2000)}`) as unknown } } })],
    ['a path that is a number', body({ path: 42 })],
    ['a path that is an object', body({ path: { toString: 'db/users/select' } })],
    ['no path', body({ params: {} })],
    ['params as an array', body({ path: 'db/users/select', params: [] })],
    ['params as a string', body({ path: 'db/users/select', params: 'where 1=1' })],
    ['where as an array', body({ path: 'db/users/select', params: { where: [['name', 'x']] } })],
    ['where as SQL text', body({ path: 'db/users/select', params: { where: '1=1' } })],
    ['limit as a string', body({ path: 'db/users/select', params: { limit: '10; DROP TABLE users' } })],
    ['limit as a float', body({ path: 'db/users/select', params: { limit: 1.5 } })],
    ['limit huge', body({ path: 'db/users/select', params: { limit: 1e300 } })],
    ['offset negative', body({ path: 'db/users/select', params: { offset: -1 } })],
    ['orderBy as an array', body({ path: 'db/users/select', params: { orderBy: ['name'] } })],
    ['orderBy with SQL as direction', body({ path: 'db/users/select', params: { orderBy: { name: 'asc; DROP TABLE users' } } })],
    ['select as a string', body({ path: 'db/users/select', params: { select: 'id, email' } })],
    ['select with a number', body({ path: 'db/users/select', params: { select: [1] } })],
    ['data as an array', body({ path: 'db/users/insert', params: { data: [['email', 'x']] } })],
    ['an object for a text column', body({ path: 'db/users/insert', params: { data: { email: { $gt: '' } } } })],
    ['an array for a text column', body({ path: 'db/users/insert', params: { data: { email: ['a', 'b'] } } })],
    ['a boolean for an int column', body({ path: 'db/users/select', params: { where: { age: true } } })],
    ['a string for a boolean column', body({ path: 'db/users/update', params: { where: { email: 'x' }, data: { active: 'false' } } })],
    ['an int out of range', body({ path: 'db/users/select', params: { where: { age: 2 ** 40 } } })],
    ['comparing a JSON column', body({ path: 'db/users/select', params: { where: { settings: { a: 1 } } } })],
    ['update with an empty where', body({ path: 'db/users/update', params: { where: {}, data: { name: 'x' } } })],
    ['delete with no where', body({ path: 'db/users/delete', params: {} })],
    ['an unknown top-level field', body({ path: 'db/users/select', sql: 'DELETE FROM users' })],
    ['__proto__ at the top level', '{"path":"db/users/select","__proto__":{"admin":true}}'],
    ['__proto__ as a where key', '{"path":"db/users/select","params":{"where":{"__proto__":{"email":"x"}}}}'],
    ['constructor as a column', body({ path: 'db/users/select', params: { where: { constructor: 'x' } } })],
    ['a unicode table name', body({ path: 'db/üsers/select' })],
    ['a table outside public', body({ path: 'db/pg_catalog.pg_authid/select' })],
    ['a system table name', body({ path: 'db/pg_authid/select' })],
    ['path traversal', body({ path: 'db/../users/select' })],
    ['an unknown operation', body({ path: 'db/users/truncate' })],
    ['an upper-case operation', body({ path: 'db/users/DELETE' })],
  ];
  for (const s of sqlish) {
    cases.push([`SQL in a table name: ${s}`, body({ path: `db/${s}/select` })]);
    cases.push([`SQL in a where key: ${s}`, body({ path: 'db/users/select', params: { where: { [s]: 'x' } } })]);
    cases.push([`SQL in a select column: ${s}`, body({ path: 'db/users/select', params: { select: [s] } })]);
    cases.push([`SQL in an orderBy key: ${s}`, body({ path: 'db/users/select', params: { orderBy: { [s]: 'asc' } } })]);
    cases.push([`SQL in a data key: ${s}`, body({ path: 'db/users/insert', params: { data: { email: 'x@example.com', [s]: 'x' } } })]);
    cases.push([`SQL as an int value: ${s}`, body({ path: 'db/users/select', params: { where: { age: s } } })]);
    cases.push([`SQL in a delete where key: ${s}`, body({ path: 'db/users/delete', params: { where: { [s]: 1 } } })]);
  }
  return cases;
}

let operator: OperatorProcess | undefined;
let bridge: BridgeProcess;

/** One case's own project: the users table served, an admin key, two seed rows (a@ and b@example.com). */
interface Case {
  readonly p: DataplaneProject;
  readonly admin: ApiKey;
  db(): DataplaneProject['dbs'][string]['sql'];
  /** the table's rows, the public columns and tables, as hashes: equal means unchanged */
  fingerprint(): Promise<unknown>;
}

async function newCase(context: TestContext): Promise<Case> {
  const p = await createDataplaneProject('dpbad', ['dev']);
  context.onTestFinished(() => p.drop());
  await p.apply('dev', { 'schema/app.yaml': schema, 'config/permissions.yaml': permissions });
  const admin = await createApiKey(p.project, 'dev', ['admin'], undefined, bridge);
  await waitServable(bridge, admin.apiKey, 'db/users/select');
  for (const email of ['a@example.com', 'b@example.com']) dataOf(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email, name: 'seed', age: 30 } }));
  const db = () => p.dbs.dev!.sql;
  return {
    p,
    admin,
    db,
    fingerprint: async () => ({
      rows: await db()`SELECT md5(coalesce(string_agg(u::text, '|' ORDER BY u.id), '')) AS h, count(*)::int AS n FROM users u`,
      columns: await db()`SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name) AS c FROM information_schema.columns WHERE table_schema = 'public'`,
      tables: await db()`SELECT string_agg(tablename, ',' ORDER BY tablename) AS t FROM pg_tables WHERE schemaname = 'public'`,
    }),
  };
}

/** Sends every body of the corpus with `key`; the answers that are not a 4xx in the envelope, or that echo SQL. */
async function corpusFailures(key: string): Promise<string[]> {
  const failures: string[] = [];
  for (const [what, body] of corpus()) {
    const res = await callRaw(bridge, body, { 'x-santokit-api-key': key });
    const ok = res.status >= 400 && res.status < 500 && typeof res.body.error?.code === 'string' && typeof res.body.error?.message === 'string' && res.body.error.requestId === res.requestId;
    if (!ok) failures.push(`${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
    for (const s of sqlish) if (s.length > 4 && res.body.error?.message.includes(s)) failures.push(`${what}: the message echoes ${s}`);
  }
  return failures;
}

/** Bad credentials and routing headers with a delete body, and the status each must get. */
function badHeaders(admin: ApiKey): Array<[Record<string, string>, number]> {
  return [
    [{}, 401],
    [{ 'x-santokit-api-key': "' OR 1=1 --" }, 401],
    [{ 'x-santokit-api-key': `stk_${admin.keyId}_${"' OR 1=1 --".padEnd(43, 'x')}` }, 401],
    [{ 'x-santokit-api-key': 'x'.repeat(8000) }, 401],
    [{ 'x-santokit-api-key': admin.apiKey, 'x-santokit-project': "'; DROP TABLE users; --" }, 403],
    [{ 'x-santokit-api-key': admin.apiKey, 'x-santokit-env': '../prod' }, 403],
  ];
}
const deleteA = JSON.stringify({ path: 'db/users/delete', params: { where: { email: 'a@example.com' } } });

describe('bad input', () => {
  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-bad');
    bridge = await startBridge();
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await operator?.stop();
  });

  it('answers every body of the corpus with a 4xx in the envelope; the database is unchanged', async (context) => {
    const c = await newCase(context);
    const before = await c.fingerprint();
    expect(await corpusFailures(c.admin.apiKey)).toEqual([]);
    // the first 64 cases again, all at once
    const results = await Promise.all(corpus().slice(0, 64).map(([, body]) => callRaw(bridge, body, { 'x-santokit-api-key': c.admin.apiKey })));
    expect(results.filter((r) => r.status < 400 || r.status >= 500)).toEqual([]);
    expect(await c.fingerprint()).toEqual(before);
  });

  it('refuses bad credentials and headers with 401/403, whatever the body', async (context) => {
    const c = await newCase(context);
    for (const [h, status] of badHeaders(c.admin)) {
      const res = await callRaw(bridge, deleteA, h);
      expect(res.status, JSON.stringify(h).slice(0, 80)).toBe(status);
      expect(res.body.error?.requestId).toBe(res.requestId);
    }
    expect(await c.db()`SELECT email FROM users ORDER BY email`).toEqual([{ email: 'a@example.com' }, { email: 'b@example.com' }]);
  });

  it('refuses huge bodies with 413 and keeps serving', async (context) => {
    const c = await newCase(context);
    const big = JSON.stringify({ path: 'db/users/insert', params: { data: { email: 'big@example.com', name: 'x'.repeat(2 * MiB) } } });
    const res = await callRaw(bridge, big, { 'x-santokit-api-key': c.admin.apiKey });
    expect(res.status).toBe(413);
    expect(res.body.error?.code).toBe('PayloadTooLarge');
    // 40 MiB: answered at once while the rest is read and discarded, so the client still gets the 413
    const huge = await callRaw(bridge, new Uint8Array(40 * MiB).fill(0x20), { 'x-santokit-api-key': c.admin.apiKey });
    expect(huge.status).toBe(413);
    expect(await c.db()`SELECT count(*)::int AS n FROM users WHERE email = 'big@example.com'`).toEqual([{ n: 0 }]);
    expect((await call(bridge, c.admin.apiKey, 'db/users/select', { limit: 1 })).status).toBe(200);
  });

  it('stores SQL-looking values verbatim as bound parameters and finds them again by equality', async (context) => {
    const c = await newCase(context);
    for (const [i, s] of sqlish.entries()) {
      dataOf(await call(bridge, c.admin.apiKey, 'db/users/insert', { data: { email: `sql${i}@example.com`, name: s, settings: { [s]: s } } }));
      const rows = dataOf<Array<{ name: string; settings: unknown }>>(await call(bridge, c.admin.apiKey, 'db/users/select', { where: { name: s }, select: ['name', 'settings'] }));
      expect(rows).toEqual([{ name: s, settings: { [s]: s } }]);
    }
    expect(await c.db()`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`).toEqual([{ tablename: 'users' }]);
    expect(await c.db()`SELECT count(*)::int AS n FROM users`).toEqual([{ n: 2 + sqlish.length }]);
  });

  it('is still alive and healthy after all of it, and logged no value', async (context) => {
    const c = await newCase(context);
    // All of it, against this case's project: the corpus, bad credentials, a huge body, SQL-looking values.
    expect(await corpusFailures(c.admin.apiKey)).toEqual([]);
    for (const [h, status] of badHeaders(c.admin)) expect((await callRaw(bridge, deleteA, h)).status).toBe(status);
    expect((await callRaw(bridge, new Uint8Array(40 * MiB).fill(0x20), { 'x-santokit-api-key': c.admin.apiKey })).status).toBe(413);
    for (const [i, s] of sqlish.entries()) dataOf(await call(bridge, c.admin.apiKey, 'db/users/insert', { data: { email: `sql${i}@example.com`, name: s } }));

    expect(bridge.child.exitCode).toBeNull();
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${bridge.probeUrl}/readyz`)).status).toBe(200);
    expect((await call(bridge, c.admin.apiKey, 'db/users/select', { where: { email: 'a@example.com' }, select: ['email'] })).body.data).toEqual([{ email: 'a@example.com' }]);
    const logs = bridge.logs();
    for (const s of ['DROP TABLE', 'DELETE FROM', 'OR 1=1', 'a@example.com']) expect(logs).not.toContain(s);
  });
});
