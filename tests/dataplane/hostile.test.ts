import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeySecret } from '../../core/apikeys.ts';
import { Kinds } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, type OperatorProcess } from '../support/cluster.ts';
import { call, callRaw, createApiKey, createDataplaneProject, dataOf, expectError, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type ApiKey, type BridgeProcess, type CallResponse, type DataplaneProject } from './support.ts';

/**
 * Hostile requests against the real bridge (docs/security.md): injection in every field, oracles
 * through every operation, oversized, deeply nested and slow bodies, floods with valid and
 * invalid keys, a planted key Secret. Every answer is a 4xx, 429 or 503 in the error envelope;
 * no answer carries a value the caller may not read; the bridge stays up with a bounded RSS (the
 * peak is printed).
 *
 * The bridge runs with small limits so that each bound is reached with few requests.
 */

const client = await adminClient();

/** Values only the admin may read: no answer to another key may contain them. */
const HIDDEN = ['hidden-5ec7e7-one', 'hidden-5ec7e7-two', 'hidden-handle-9f1'];

const schema = `version: 1
tables:
  authors:
    id: { generate: client }
    columns:
      name: { type: string }
  notes:
    id: { generate: ulid }
    columns:
      title: { type: string }
      secret: { type: string }
      owner_id: { type: string }
      handle: { type: string, unique: true }
      note: { type: string }
      body: { type: string }
      meta: { type: json }
      author_id: { type: string, references: { table: authors } }
`;

const permissions = `tables:
  authors:
    select: { roles: [admin] }
    insert: { roles: [admin] }
  notes:
    select:
      - roles: [admin]
      - roles: [reader, writer]
        columns: [id, title, owner_id, body, meta, author_id]
        condition: 'resource.owner_id == request.auth.sub'
    insert:
      - roles: [admin]
      - roles: [writer]
        columns: [title, handle, note, body, meta, author_id]
        condition: 'resource.owner_id == request.auth.sub'
    update:
      - roles: [admin]
      - roles: [writer]
        columns: [title, note]
        condition: 'resource.owner_id == request.auth.sub'
    delete:
      - roles: [writer]
        condition: 'resource.owner_id == request.auth.sub'
`;

const LIMITS = ['--max-response-bytes', '65536', '--body-timeout', '2', '--max-in-flight', '8', '--key-rate', '100', '--key-burst', '200', '--max-queued-verifications', '4'];
const MAX_RESPONSE = 65_536;

/** Peak resident memory of a process (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}

/** A raw HTTP exchange over TCP: writes `head` (and `body` chunks on demand), collects what comes back. */
function rawRequest(port: number): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString('utf8')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, received: () => data, closed };
}

describe('hostile requests', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  const names = ['admin', 'reader', 'writer', 'big'] as const;
  const k = {} as Record<(typeof names)[number], ApiKey>;
  /** Asserts that an answer carries none of the hidden values. */
  const clean = (text: string) => {
    for (const h of HIDDEN) expect(text, 'an answer leaked a hidden value').not.toContain(h);
  };
  /** A call by a named key; every answer is checked for hidden values. */
  const as = async (who: keyof typeof k, path: string, params: unknown = {}, headers: Record<string, string> = {}): Promise<CallResponse> => {
    const res = await call(bridge, k[who].apiKey, path, params, headers);
    if (who !== 'admin') clean(JSON.stringify(res.body));
    return res;
  };
  const db = () => p.dbs.dev!.sql;
  const refused = (res: CallResponse) => res.status >= 400 && res.status < 500 && typeof res.body.error?.code === 'string' && res.body.error.requestId === res.requestId;
  async function alive(): Promise<void> {
    expect(bridge.child.exitCode).toBeNull();
    expect(dataOf<unknown[]>(await call(bridge, k.admin.apiKey, 'db/notes/select', { select: ['id'], limit: 1 }))).toHaveLength(1);
  }

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-hostile');
    bridge = await startBridge({ args: LIMITS, logLevel: 'info' });
    p = await createDataplaneProject('dphostile', ['dev']);
    await p.apply('dev', { 'schema/app.yaml': schema, 'config/permissions.yaml': permissions });
    const roleOf = (name: string) => (name === 'admin' || name === 'writer' ? name : 'reader');
    await Promise.all(names.map(async (name) => (k[name] = await createApiKey(p.project, 'dev', [roleOf(name)], name, bridge))));
    await waitBridgeReady(bridge);
    // Ready says nothing of a namespace created after the bridge started: wait until dev is served.
    await waitServable(bridge, k.admin.apiKey, 'db/notes/select');
    dataOf(await call(bridge, k.admin.apiKey, 'db/authors/insert', { data: { id: 'hidden-author', name: 'x' } }));
    for (const [owner, secret, handle] of [
      [k.reader.keyId, HIDDEN[0], 'reader-handle'],
      [k.writer.keyId, HIDDEN[1], HIDDEN[2]],
      ['someone-else', HIDDEN[0], 'other-handle'],
    ] as const) {
      dataOf(await call(bridge, k.admin.apiKey, 'db/notes/insert', { data: { title: `seed of ${owner}`, secret, owner_id: owner, handle, body: 'b' } }));
    }
  });

  afterAll(async () => {
    if (bridge?.child.pid && bridge.child.exitCode === null) console.log(`bridge peak RSS over the hostile suite: ${peakRssMiB(bridge.child.pid).toFixed(0)} MiB`);
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  it('injection in every field of every operation is a 4xx and changes nothing', async () => {
    const before = await db()`SELECT md5(string_agg(n::text, '|' ORDER BY n.id)) AS h FROM notes n`;
    const evil = ["'; DROP TABLE notes; --", '" OR ""="', 'x\u0000y', '$1', 'notes"."secret', ') OR (1=1', '*'];
    const requests: Array<[string, unknown]> = [];
    for (const e of evil) {
      requests.push([`db/${e}/select`, {}], [`db/notes/${e}`, {}]);
      requests.push(['db/notes/select', { where: { [e]: 'x' } }], ['db/notes/select', { select: [e] }], ['db/notes/select', { orderBy: { [e]: 'asc' } }], ['db/notes/select', { orderBy: { title: e } }]);
      requests.push(['db/notes/select', { limit: e }], ['db/notes/select', { offset: e }]);
      requests.push(['db/notes/insert', { data: { [e]: 'x' } }], ['db/notes/update', { where: { [e]: 1 }, data: { title: 'x' } }], ['db/notes/update', { where: { title: 'x' }, data: { [e]: 1 } }], ['db/notes/delete', { where: { [e]: 1 } }]);
    }
    const failures: string[] = [];
    for (const [path, params] of requests) {
      const res = await as('writer', path, params);
      if (!refused(res)) failures.push(`${path} ${JSON.stringify(params)}: ${res.status}`);
      for (const e of evil.filter((x) => x.length > 3)) if (res.body.error?.message.includes(e)) failures.push(`${path}: echoes ${e}`);
    }
    // values are bound parameters: SQL in a value is data, found again by equality, never run
    for (const e of evil.filter((x) => !x.includes('\u0000'))) {
      const res = await as('writer', 'db/notes/select', { where: { title: e } });
      expect(dataOf(res)).toEqual([]);
    }
    // headers
    for (const h of [{ 'x-santokit-project': "' OR 1=1" }, { 'x-santokit-env': '../../prod' }] as Array<Record<string, string>>) {
      const res = await as('writer', 'db/notes/select', {}, h);
      if (res.status !== 403) failures.push(`header ${JSON.stringify(h)}: ${res.status}`);
    }
    const traced = await as('writer', 'db/notes/select', { limit: 1 }, { 'x-request-id': '"><script>' });
    expect(traced.requestId).not.toContain('<');
    expect(failures).toEqual([]);
    expect(requests.length).toBeGreaterThanOrEqual(80);
    expect(await db()`SELECT md5(string_agg(n::text, '|' ORDER BY n.id)) AS h FROM notes n`).toEqual(before);
    await alive();
  });

  it('no operation is an oracle for a column the caller cannot read: the answer is the same for a right and a wrong value', async () => {
    const mine = () => db()`SELECT title, note, secret FROM notes WHERE owner_id = ${k.writer.keyId} ORDER BY id`;
    const before = await mine();
    const probes: Array<[string, (v: string) => unknown, string]> = [
      ['db/notes/select', (v) => ({ where: { secret: v } }), HIDDEN[0]!],
      ['db/notes/select', (v) => ({ where: { handle: v }, select: ['id'] }), HIDDEN[2]!],
      ['db/notes/update', (v) => ({ where: { owner_id: k.writer.keyId, secret: v }, data: { title: 'probe' } }), HIDDEN[1]!],
      ['db/notes/update', (v) => ({ where: { handle: v }, data: { note: 'probe' } }), HIDDEN[2]!],
      ['db/notes/delete', (v) => ({ where: { owner_id: k.writer.keyId, secret: v } }), HIDDEN[1]!],
      ['db/notes/delete', (v) => ({ where: { handle: v } }), HIDDEN[2]!],
    ];
    const strip = (res: CallResponse) => JSON.stringify({ status: res.status, code: res.body.error?.code, message: res.body.error?.message, data: res.body.data });
    for (const [path, params, value] of probes) {
      const right = await as('writer', path, params(value));
      const wrong = await as('writer', path, params('certainly-not-the-value'));
      expectError(right, 403, 'ColumnNotAllowed');
      expect(strip(right)).toEqual(strip(wrong));
    }
    // select, orderBy: a hidden column is refused, never sorted on
    expectError(await as('reader', 'db/notes/select', { orderBy: { secret: 'asc' } }), 403, 'ColumnNotAllowed');
    expectError(await as('reader', 'db/notes/select', { select: ['secret'] }), 403, 'ColumnNotAllowed');
    // rows stay as they were
    expect(await mine()).toEqual(before);
    await alive();
  });

  it('insert: the answer carries the id and readable columns only; unique and foreign-key refusals name no constraint, column or value', async () => {
    const row = dataOf<Record<string, unknown>>(await as('writer', 'db/notes/insert', { data: { title: 'mine', note: 'write-only', handle: `h-${randomBytes(4).toString('hex')}` } }));
    expect(Object.keys(row).sort()).toEqual(['id', 'owner_id', 'title']);
    const dup = await as('writer', 'db/notes/insert', { data: { title: 'dup', handle: HIDDEN[2] } });
    expectError(dup, 409, 'UniqueViolation');
    expect(dup.body.error?.message).not.toMatch(/handle|notes_handle|hidden/);
    const fk = await as('writer', 'db/notes/insert', { data: { title: 'fk', author_id: 'no-such-author' } });
    expectError(fk, 422, 'ForeignKeyViolation');
    expect(fk.body.error?.message).not.toMatch(/author_id|no-such-author|fkey/);
    await alive();
  });

  it('what a caller learns of the schema: anonymous callers nothing (one 401 for every path); key holders names, never values', async () => {
    const anonymous = await Promise.all(
      ['db/notes/select', 'db/nope/select', 'db/notes/delete'].flatMap((path) => [callRaw(bridge, JSON.stringify({ path, params: { where: { secret: 'x' } } })), callRaw(bridge, JSON.stringify({ path }), { 'x-santokit-api-key': `stk_ak${'0'.repeat(16)}_${'a'.repeat(43)}` })]),
    );
    const shapes = new Set(anonymous.map((r) => JSON.stringify({ status: r.status, message: r.body.error?.message })));
    expect(anonymous.every((r) => r.status === 401)).toBe(true);
    expect(shapes.size).toBe(2); // missing key vs invalid key, nothing about the path
    // a key holder: an unknown column is 400, a hidden one 403 (documented: names are not secret to key holders)
    expectError(await as('reader', 'db/notes/select', { select: ['nope'] }), 400, 'UnknownColumn');
    expectError(await as('reader', 'db/notes/select', { select: ['secret'] }), 403, 'ColumnNotAllowed');
    expectError(await as('reader', 'db/nope/select'), 404, 'UnknownTable');
  });

  it('oversized and deeply nested bodies are refused; a body from an unknown caller is never read', async () => {
    const cases: Array<[string, string, Record<string, string>, number]> = [
      ['2 MiB body', JSON.stringify({ path: 'db/notes/insert', params: { data: { title: 'x'.repeat(2 * 1024 * 1024) } } }), { 'x-santokit-api-key': k.writer.apiKey }, 413],
      ['nested 100 000 deep', `{"path":"db/notes/insert","params":{"data":{"meta":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`, { 'x-santokit-api-key': k.writer.apiKey }, 400],
      ['nested 40 deep in where', JSON.stringify({ path: 'db/notes/select', params: { where: { title: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) as unknown } } }), { 'x-santokit-api-key': k.writer.apiKey }, 400],
      ['nested in JSON that is not a call', `${'{"a":'.repeat(150_000)}1${'}'.repeat(150_000)}`, { 'x-santokit-api-key': k.writer.apiKey }, 400],
      ['512 KiB body without a key', 'x'.repeat(512 * 1024), {}, 401],
      ['512 KiB body with an unknown key', 'x'.repeat(512 * 1024), { 'x-santokit-api-key': `stk_ak${'1'.repeat(16)}_${'c'.repeat(43)}` }, 401],
    ];
    for (const [what, body, headers, status] of cases) {
      const res = await callRaw(bridge, body, headers);
      clean(JSON.stringify(res.body));
      expect(res.status, what).toBe(status);
    }

    // Authentication happens before the body: headers alone (announcing 4 MiB that never come)
    // get their 401 at once, and the connection is closed instead of read.
    const { socket, received, closed } = rawRequest(bridge.port);
    socket.write(`POST /call HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${4 * 1024 * 1024}\r\nx-santokit-api-key: stk_ak0123456789abcdef_${'b'.repeat(43)}\r\n\r\n`);
    await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 401 /);
    expect(received().toLowerCase()).toContain('connection: close');
    await alive();
  });

  it('a slow upload with a valid key is cut at the body deadline (400 BodyTimeout) and the connection closed', async () => {
    const { socket, received, closed } = rawRequest(bridge.port);
    socket.write(`POST /call HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\nx-santokit-api-key: ${k.writer.apiKey}\r\n\r\n{"path":`);
    const timer = setInterval(() => socket.write(' '), 300);
    await closed;
    clearInterval(timer);
    expect(received()).toMatch(/^HTTP\/1\.1 400 /);
    expect(received()).toContain('BodyTimeout');
    await alive();
  });

  it('an answer past the byte limit is refused with how to page, and the process survives it', async () => {
    // 12 rows of 16 KiB readable by the big key: 192 KiB > the 64 KiB limit of this bridge
    await db()`INSERT INTO notes (id, title, owner_id, body) SELECT 'big-' || i, 'big', ${k.big.keyId}, repeat('y', 16384) FROM generate_series(1, 12) AS i`;
    const res = await as('big', 'db/notes/select', { select: ['id', 'body'] });
    expectError(res, 400, 'ResponseTooLarge');
    expect(res.body.error?.message).toContain(String(MAX_RESPONSE));
    const fit = Number(/(\d+) rows? fit/.exec(res.body.error!.message)?.[1]);
    expect(fit).toBeGreaterThan(0);
    expect(res.body.error?.hint).toContain(`limit ${fit}`);
    const page = dataOf<unknown[]>(await as('big', 'db/notes/select', { select: ['id', 'body'], orderBy: { id: 'asc' }, limit: fit }));
    expect(page).toHaveLength(fit);
    const second = dataOf<unknown[]>(await as('big', 'db/notes/select', { select: ['id', 'body'], orderBy: { id: 'asc' }, limit: fit, offset: fit }));
    expect(second.length).toBeGreaterThan(0);
    await alive();
  });

  it('a flood with one valid key meets its rate (429 with Retry-After); other keys keep working', async () => {
    // a replica of its own with a rate of 1 call/s and a burst of 5
    const limited = await startBridge({ args: ['--key-rate', '1', '--key-burst', '5'], logLevel: 'warn' });
    try {
      await waitBridgeReady(limited);
      const answers: Array<{ status: number; retryAfter: string | null }> = [];
      for (let i = 0; i < 30; i++) {
        const res = await fetch(`${limited.url}/call`, { method: 'POST', headers: { 'x-santokit-api-key': k.reader.apiKey }, body: '{"path":"db/notes/select","params":{"limit":1}}' });
        clean(await res.text());
        answers.push({ status: res.status, retryAfter: res.headers.get('retry-after') });
      }
      expect(answers.every((a) => a.status === 200 || a.status === 429), answers.map((a) => a.status).join(',')).toBe(true);
      expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(5);
      const refused = answers.filter((a) => a.status === 429);
      expect(refused.length).toBeGreaterThan(0);
      for (const a of refused) expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
      // the rate is the key's, not the replica's
      expect((await call(limited, k.admin.apiKey, 'db/notes/select', { limit: 1 })).status).toBe(200);
      expect(limited.child.exitCode).toBeNull();
    } finally {
      await limited.stop('SIGKILL');
    }
  });

  it('a flood with invalid keys is 401 (or 503 with Retry-After when verifications queue), and valid keys keep working', async () => {
    // a known key id with wrong secrets: each needs a scrypt run; the queue is bounded
    const wrong = Array.from({ length: 60 }, () => `stk_${k.reader.keyId}_${randomBytes(32).toString('base64url')}`);
    const unknown = Array.from({ length: 60 }, () => `stk_ak${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`);
    const answers = await Promise.all([...wrong, ...unknown].map(async (key) => {
      const res = await fetch(`${bridge.url}/call`, { method: 'POST', headers: { 'x-santokit-api-key': key }, body: '{"path":"db/notes/select"}' });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
    }));
    for (const a of answers) {
      expect([401, 503], a.body).toContain(a.status);
      if (a.status === 503) expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect((await call(bridge, k.reader.apiKey, 'db/notes/select', { limit: 1 })).status).toBe(200);
    await alive();
  });

  it('calls past the in-flight bound are 503 with Retry-After, not queued', async () => {
    const holder = await db().reserve();
    try {
      await holder`BEGIN`;
      await holder`LOCK TABLE notes IN ACCESS EXCLUSIVE MODE`;
      const held = Array.from({ length: 8 }, () => call(bridge, k.big.apiKey, 'db/notes/select', { select: ['id'], limit: 1 }));
      await eventually(
        async () => ((await db()`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'santokit-bridge' AND wait_event_type = 'Lock'`)[0]!.n >= 8 ? true : undefined),
        { timeoutMs: 10_000, what: 'eight calls to wait on the lock' },
      );
      const res = await fetch(`${bridge.url}/call`, { method: 'POST', headers: { 'x-santokit-api-key': k.reader.apiKey }, body: '{"path":"db/notes/select"}' });
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('Overloaded');
      await holder`COMMIT`;
      expect((await Promise.all(held)).map((r) => r.status)).toEqual(Array(8).fill(200));
    } finally {
      holder.release();
    }
    await alive();
  });

  it('a planted key Secret with costly scrypt parameters is ignored: its key is 401 and memory stays bounded', async () => {
    const keyId = `ak${randomBytes(8).toString('hex')}`;
    const presented = `stk_${keyId}_${randomBytes(32).toString('base64url')}`;
    // within core's bounds, but 128 * N * r = 256 MiB and p = 4 runs per verification
    const hash = `scrypt$v=1$n=131072,r=16,p=4$${randomBytes(16).toString('base64url')}$${randomBytes(32).toString('base64url')}`;
    const ignored = () => bridge.logs().split('ignoring a malformed API-key Secret').length - 1;
    const before = ignored();
    await client.create(Kinds.Secret, apiKeySecret({ namespace: p.namespace, project: p.project, environment: 'dev', keyId, name: 'planted', roles: ['admin'], hash, createdAt: new Date().toISOString() }) as unknown as KubeObject);
    await eventually(async () => (ignored() > before ? true : undefined), { timeoutMs: 30_000, what: 'the bridge to log the planted Secret as malformed' });
    const answers = await Promise.all(Array.from({ length: 4 }, () => callRaw(bridge, '{"path":"db/notes/select"}', { 'x-santokit-api-key': presented })));
    expect(answers.map((r) => r.status)).toEqual([401, 401, 401, 401]);
    // the chart's memory limit is 512 Mi; two verifications with these parameters would take 512 MiB
    expect(peakRssMiB(bridge.child.pid!)).toBeLessThan(384);
    await alive();
  });
});
