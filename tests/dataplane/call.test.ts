import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, expectExit, stk } from '../support/cluster.ts';
import type { OperatorProcess } from '../support/cluster.ts';
import { call, callRaw, createApiKey, createDataplaneProject, dataOf, expectError, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type ApiKey, type BridgeProcess, type DataplaneProject } from './support.ts';

/**
 * `POST /call` end to end (OPERATOR-001's last check and the query surface): the operator and the
 * bridge as real processes, a release applied with `stk apply`, calls over HTTP, the database read
 * directly to confirm what happened.
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
      avatar: { type: bytes }
      born_at: { type: timestamp }
  events:
    id: { generate: uuid_v4 }
    columns:
      label: { type: string }
  orders:
    id: { generate: uuid_v7 }
    columns:
      label: { type: string }
  tags:
    id: { generate: nanoid }
    columns:
      label: { type: string }
  logs:
    id: { generate: auto_increment }
    columns:
      label: { type: string }
  slugs:
    id: { generate: client }
    columns:
      label: { type: string }
`;

const permissions = `tables:
${['users', 'events', 'orders', 'tags', 'logs', 'slugs'].map((t) => `  ${t}:\n    select: { roles: [admin] }\n    insert: { roles: [admin] }\n    update: { roles: [admin] }\n    delete: { roles: [admin] }\n`).join('')}`;

describe('POST /call', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  let admin: ApiKey;
  const db = () => p.dbs.dev!.sql;

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-call');
    bridge = await startBridge();
    p = await createDataplaneProject('dpcall', ['dev']);
    await p.apply('dev', { 'schema/app.yaml': schema, 'config/permissions.yaml': permissions });
    admin = await createApiKey(p.project, 'dev', ['admin'], undefined, bridge);
    await waitBridgeReady(bridge);
    await waitServable(bridge, admin.apiKey, 'db/users/select');
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  it('OPERATOR-001: after stk apply, a select with a key of that env returns 200 and the rows inserted through /call', async () => {
    const inserted = dataOf<{ id: string; email: string; name: string }>(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'ann@example.com', name: 'Ann' } }));
    expect(inserted).toEqual({ id: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/), email: 'ann@example.com', name: 'Ann' });
    dataOf(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'bob@example.com', name: 'Bob', age: 41 } }));

    const res = await call(bridge, admin.apiKey, 'db/users/select', { select: ['id', 'email', 'name'], orderBy: { email: 'asc' } });
    expect(res.status).toBe(200);
    expect(res.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.data).toEqual([
      { id: inserted.id, email: 'ann@example.com', name: 'Ann' },
      { id: expect.any(String), email: 'bob@example.com', name: 'Bob' },
    ]);
    expect(await db()`SELECT email FROM users ORDER BY email`).toEqual([{ email: 'ann@example.com' }, { email: 'bob@example.com' }]);
  });

  it('generates ids per the table policy: ulid, uuid_v4, uuid_v7, nanoid by the data plane, auto_increment by the database, client from the caller', async () => {
    const shapes: Array<[string, RegExp]> = [
      ['events', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/],
      ['orders', /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/],
      ['tags', /^[A-Za-z0-9_-]{21}$/],
      ['logs', /^\d+$/],
    ];
    for (const [table, shape] of shapes) {
      const row = dataOf<{ id: string; label: string }>(await call(bridge, admin.apiKey, `db/${table}/insert`, { data: { label: table } }));
      expect(String(row.id), table).toMatch(shape);
      expect(await db()`SELECT label FROM ${db()(table)} WHERE id = ${row.id}`).toEqual([{ label: table }]);
    }
    const second = dataOf<{ id: string }>(await call(bridge, admin.apiKey, 'db/logs/insert', { data: { label: 'again' } }));
    expect(Number(second.id)).toBeGreaterThan(0);

    expect(dataOf(await call(bridge, admin.apiKey, 'db/slugs/insert', { data: { id: 'hello-world', label: 'x' } }))).toEqual({ id: 'hello-world', label: 'x' });
    expectError(await call(bridge, admin.apiKey, 'db/slugs/insert', { data: { label: 'no id' } }), 400, 'IdRequired');
    expectError(await call(bridge, admin.apiKey, 'db/events/insert', { data: { id: 'mine', label: 'x' } }), 400, 'IdGenerated');
    expectError(await call(bridge, admin.apiKey, 'db/logs/insert', { data: { id: 99, label: 'x' } }), 400, 'IdGenerated');
    expect(await db()`SELECT count(*)::int AS n FROM events`).toEqual([{ n: 1 }]);
  });

  it('select: where equalities are ANDed; select, orderBy, limit and offset shape the answer', async () => {
    for (const [email, name, age] of [
      ['c1@example.com', 'Cat', 30],
      ['c2@example.com', 'Cat', 31],
      ['c3@example.com', 'Cat', 32],
    ] as const) {
      dataOf(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email, name, age } }));
    }
    const page = dataOf(await call(bridge, admin.apiKey, 'db/users/select', { where: { name: 'Cat' }, select: ['email', 'age'], orderBy: { email: 'desc' }, limit: 2, offset: 1 }));
    expect(page).toEqual([
      { email: 'c2@example.com', age: 31 },
      { email: 'c1@example.com', age: 30 },
    ]);
    expect(dataOf(await call(bridge, admin.apiKey, 'db/users/select', { where: { name: 'Cat', age: 32 }, select: ['email'] }))).toEqual([{ email: 'c3@example.com' }]);
    dataOf(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'kit@example.com', name: 'Kit' } }));
    expect(dataOf(await call(bridge, admin.apiKey, 'db/users/select', { where: { age: null, name: 'Kit' }, select: ['email'] }))).toEqual([{ email: 'kit@example.com' }]);
    expect(dataOf(await call(bridge, admin.apiKey, 'db/users/select', { where: { name: 'Nobody' } }))).toEqual([]);
  });

  it('update and delete answer the affected count', async () => {
    // rows of its own: the case runs alone and after any other
    for (const email of ['d1@example.com', 'd2@example.com', 'd3@example.com']) dataOf(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email, name: 'Dog' } }));
    expect(dataOf(await call(bridge, admin.apiKey, 'db/users/update', { where: { name: 'Dog' }, data: { active: false } }))).toEqual({ affected: 3 });
    expect(await db()`SELECT count(*)::int AS n FROM users WHERE NOT active AND name = 'Dog'`).toEqual([{ n: 3 }]);
    expect(dataOf(await call(bridge, admin.apiKey, 'db/users/delete', { where: { email: 'd3@example.com' } }))).toEqual({ affected: 1 });
    expect(dataOf(await call(bridge, admin.apiKey, 'db/users/delete', { where: { email: 'd3@example.com' } }))).toEqual({ affected: 0 });
  });

  it('an update or delete with an empty or missing where is 400 and touches nothing', async () => {
    const before = await db()`SELECT count(*)::int AS n, count(*) FILTER (WHERE active)::int AS a FROM users`;
    expectError(await call(bridge, admin.apiKey, 'db/users/update', { data: { active: true } }), 400, 'MissingWhere');
    expectError(await call(bridge, admin.apiKey, 'db/users/update', { where: {}, data: { active: true } }), 400, 'MissingWhere');
    expectError(await call(bridge, admin.apiKey, 'db/users/delete', {}), 400, 'MissingWhere');
    expectError(await call(bridge, admin.apiKey, 'db/users/delete', { where: {} }), 400, 'MissingWhere');
    expect(await db()`SELECT count(*)::int AS n, count(*) FILTER (WHERE active)::int AS a FROM users`).toEqual(before);
  });

  it.each([
    ['an unknown table', 'db/nope/select', {}, 404, 'UnknownTable'],
    ['an unknown column in where', 'db/users/select', { where: { nope: 1 } }, 400, 'UnknownColumn'],
    ['an unknown column in select', 'db/users/select', { select: ['nope'] }, 400, 'UnknownColumn'],
    ['an unknown column in data', 'db/users/insert', { data: { email: 'z@example.com', nope: 1 } }, 400, 'UnknownColumn'],
    ['a bad direction', 'db/users/select', { orderBy: { email: 'up' } }, 400, 'InvalidParams'],
    ['a negative limit', 'db/users/select', { limit: -1 }, 400, 'InvalidParams'],
    ['a negative offset', 'db/users/select', { offset: -5 }, 400, 'InvalidParams'],
    ['a string for an integer column', 'db/users/select', { where: { age: 'forty' } }, 400, 'InvalidValue'],
    ['a number for a text column', 'db/users/insert', { data: { email: 42 } }, 400, 'InvalidValue'],
    ['a malformed timestamp', 'db/users/insert', { data: { email: 'z@example.com', born_at: 'last tuesday' } }, 400, 'InvalidValue'],
    ['null for a NOT NULL column', 'db/users/insert', { data: { email: null } }, 400, 'InvalidValue'],
    ['an unknown operation', 'db/users/upsert', {}, 400, 'InvalidPath'],
  ] as const)('%s is %i %s in the error envelope', async (_what, path, params, status, code) => {
    expectError(await call(bridge, admin.apiKey, path, params), status, code);
  });

  it('maps database errors by SQLSTATE: a duplicate unique value is 409 naming neither the value nor the constraint', async () => {
    dataOf(await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'dup@example.com' } }));
    const res = await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'dup@example.com' } });
    expectError(res, 409, 'UniqueViolation');
    expect(res.body.error?.message).toContain('table users');
    expect(res.body.error?.message).not.toMatch(/dup@example\.com|users_email_key|email/);
    const missing = await call(bridge, admin.apiKey, 'db/users/insert', { data: {} });
    expectError(missing, 400, 'NotNullViolation');
  });

  it('round-trips JSON, bytes (base64) and timestamps', async () => {
    const row = dataOf<{ id: string }>(
      await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'types@example.com', settings: { theme: 'dark', n: [1, 2] }, avatar: Buffer.from('hello').toString('base64'), born_at: '1990-05-06T07:08:09Z' } }),
    );
    const [got] = dataOf<Array<Record<string, unknown>>>(await call(bridge, admin.apiKey, 'db/users/select', { where: { id: row.id }, select: ['settings', 'avatar', 'born_at', 'active'] }));
    expect(got).toEqual({ settings: { theme: 'dark', n: [1, 2] }, avatar: Buffer.from('hello').toString('base64'), born_at: '1990-05-06T07:08:09.000Z', active: true });
  });

  it('echoes a well-formed X-Request-Id and answers other routes and methods in the envelope', async () => {
    const res = await call(bridge, admin.apiKey, 'db/users/select', { limit: 1 }, { 'x-request-id': 'trace-123' });
    expect(res.requestId).toBe('trace-123');
    expectError(await callRaw(bridge, '', {}, 'GET'), 405, 'MethodNotAllowed');
    const other = await fetch(`${bridge.url}/nope`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('NotFound');
  });

  it('serves /readyz and /metrics (call counters) on the probe port only; the public port answers them 404', async () => {
    // a select of its own to count (a call is counted before the bridge handles the next request)
    dataOf(await call(bridge, admin.apiKey, 'db/users/select', { limit: 1 }));
    expect((await fetch(`${bridge.probeUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${bridge.probeUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    for (const route of ['/readyz', '/metrics']) {
      const res = await fetch(`${bridge.url}${route}`);
      expect(res.status, route).toBe(404);
      expect(await res.text()).not.toContain(p.namespace);
    }
    const metrics = await (await fetch(`${bridge.probeUrl}/metrics`)).text();
    expect(metrics).toMatch(/santokit_bridge_requests_total\{op="select",status="200"\} \d+/);
    expect(metrics).toMatch(/santokit_bridge_request_duration_seconds_bucket/);
    expect(metrics).toMatch(/santokit_bridge_served_environments [1-9]/);
  });

  it('logs calls without keys, values or SQL', async () => {
    const inserted = await call(bridge, admin.apiKey, 'db/users/insert', { data: { email: 'logged@example.com', name: 'Logged' } });
    expect(inserted.status).toBe(200);
    // The line is written just after the answer is sent: wait for it, by the call's request id.
    const line = await eventually(async () => bridge.records().find((r) => r.msg === 'call' && r.requestId === inserted.requestId), { timeoutMs: 10_000, what: 'the log line of the insert' });
    expect(line).toMatchObject({ keyId: admin.keyId, op: 'insert', table: 'users', status: 200 });
    const logs = bridge.logs();
    for (const secret of [admin.apiKey, admin.apiKey.slice(24), 'logged@example.com', 'Logged', 'ann@example.com', 'types@example.com', 'SELECT', 'INSERT']) expect(logs).not.toContain(secret);
  });

  it('stk lists the key it was called with', async () => {
    const list = await stk(['apikey', 'list', '--project', p.project, '--env', 'dev', '--json']);
    expectExit(list);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ keyId: admin.keyId, status: 'active' })]);
  });

  it('shuts down gracefully on SIGTERM: a call in flight (held by a table lock) finishes with 200, then exit 0', async () => {
    // Hold the call inside the database: a lock the select must wait for.
    const holder = await db().reserve();
    try {
      await holder`BEGIN`;
      await holder`LOCK TABLE users IN ACCESS EXCLUSIVE MODE`;
      const inflight = call(bridge, admin.apiKey, 'db/users/select', { limit: 5 });
      await eventually(
        async () => ((await db()`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'santokit-bridge' AND wait_event_type = 'Lock'`)[0]!.n > 0 ? true : undefined),
        { timeoutMs: 10_000, what: 'the call to wait on the lock' },
      );
      bridge.child.kill('SIGTERM');
      // Shutdown has begun (not ready any more) while the call is still held.
      await eventually(async () => ((await fetch(`${bridge.probeUrl}/readyz`).catch(() => undefined))?.status === 503 ? true : undefined), { timeoutMs: 10_000, what: 'the bridge to report shutting down' });
      expect(bridge.child.exitCode).toBeNull();
      await holder`COMMIT`;
      const res = await inflight;
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(await bridge.exited).toBe(0);
      expect(bridge.logs()).toContain('"msg":"stopped"');
    } finally {
      holder.release();
    }
  });
});
