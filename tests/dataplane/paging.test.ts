import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperatorProcess } from '../support/cluster.ts';
import { call, createApiKey, createDataplaneProject, dataOf, expectError, startBridge, startDataplaneOperator, waitServable, type ApiKey, type BridgeProcess, type CallResponse, type DataplaneProject } from './support.ts';

/**
 * Bounded sorting and keyset paging against the real bridge: `orderBy` must start with a column
 * that leads an index the release declares (else 400 `OrderByNotIndexed`, naming only columns the
 * caller can read), and `after` walks a table page by page in either direction without
 * duplicates or gaps. Rows are seeded per test under a batch of its own.
 */

const schema = `version: 1
tables:
  items:
    id: { generate: ulid }
    columns:
      batch: { type: string, nullable: false }
      seq: { type: int, nullable: false }
      title: { type: string }
      secret: { type: string }
      slug: { type: string, nullable: false, unique: true }
      created_at: { type: timestamp, nullable: false, default: now }
      body: { type: string }
    indexes:
      - { columns: [batch, seq], unique: true }
      - { columns: [created_at, id] }
      - { columns: [secret] }
`;

const permissions = `tables:
  items:
    select:
      - roles: [admin]
      - roles: [reader]
        columns: [id, batch, seq, title, slug, created_at, body]
`;

/** The bridge of this file caps answers at 64 KiB (to see the "how to page" answer cheaply). */
const MAX_RESPONSE = 65_536;

type Row = Record<string, unknown>;

describe('ordering on indexes and keyset paging', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  let admin: ApiKey;
  let reader: ApiKey;
  const as = (key: ApiKey, params: unknown): Promise<CallResponse> => call(bridge, key.apiKey, 'db/items/select', params);
  const db = () => p.dbs.dev!.sql;

  /** Seeds n rows under a fresh batch; ids `<batch>-<seq, 4 digits>`, created_at one second apart. Returns the batch. */
  async function seed(n: number, extra: { body?: string } = {}): Promise<string> {
    const batch = `b${randomBytes(4).toString('hex')}`;
    await db()`INSERT INTO items (id, batch, seq, title, secret, slug, created_at, body)
      SELECT ${batch} || '-' || lpad(i::text, 4, '0'), ${batch}, i, 't' || (i % 7), 's' || i, ${batch} || '-slug-' || i,
             timestamptz '2026-01-01T00:00:00Z' + i * interval '1 second', ${extra.body ?? null}
      FROM generate_series(1, ${n}) AS i`;
    return batch;
  }
  const idOf = (batch: string, i: number) => `${batch}-${String(i).padStart(4, '0')}`;

  /** Walks every page of `params` with `after` built from the last row's `keys`; returns the ids in answer order and the page sizes. */
  async function walk(key: ApiKey, params: Record<string, unknown>, keys: string[], pageSize: number): Promise<{ ids: string[]; pages: number[] }> {
    const ids: string[] = [];
    const pages: number[] = [];
    let after: Row | undefined;
    for (let guard = 0; guard < 20; guard++) {
      const rows = dataOf<Row[]>(await as(key, { ...params, limit: pageSize, ...(after ? { after } : {}) }));
      pages.push(rows.length);
      ids.push(...rows.map((r) => r.id as string));
      if (rows.length < pageSize) return { ids, pages };
      const last = rows[rows.length - 1]!;
      after = Object.fromEntries(keys.map((k) => [k, last[k]]));
    }
    throw new Error('the walk did not end');
  }

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-paging');
    bridge = await startBridge({ args: ['--max-response-bytes', String(MAX_RESPONSE)], logLevel: 'warn' });
    p = await createDataplaneProject('dppage', ['dev']);
    await p.apply('dev', { 'schema/app.yaml': schema, 'config/permissions.yaml': permissions });
    admin = await createApiKey(p.project, 'dev', ['admin'], 'admin', bridge);
    reader = await createApiKey(p.project, 'dev', ['reader'], 'reader', bridge);
    await waitServable(bridge, admin.apiKey, 'db/items/select');
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  it('ordering by an unindexed column is 400 OrderByNotIndexed, naming only columns the caller can read, and how to allow it', async () => {
    const res = await as(reader, { orderBy: { title: 'asc' } });
    expectError(res, 400, 'OrderByNotIndexed');
    const message = res.body.error!.message;
    // the reader may order by these (declaration order) …
    expect(message).toContain('id, batch, slug, created_at');
    // … and never learns of secret, which leads an index but is hidden from it
    expect(message).not.toContain('secret');
    expect(res.body.error?.hint).toContain('declare an index');
    // a column that is in an index but not first does not lead it
    expectError(await as(admin, { orderBy: { seq: 'asc' } }), 400, 'OrderByNotIndexed');
    // the admin reads secret, so it is offered to the admin
    expect((await as(admin, { orderBy: { body: 'asc' } })).body.error?.message).toContain('secret');
  });

  it('a hidden column stays 403 in orderBy, even when it leads an index', async () => {
    const res = await as(reader, { orderBy: { secret: 'asc' } });
    expectError(res, 403, 'ColumnNotAllowed');
  });

  it('orders by the primary key, a unique constraint, a declared index, with any readable tie-breaker after it', async () => {
    const batch = await seed(5);
    const ids = (rows: Row[]) => rows.map((r) => r.id);
    const asc = [1, 2, 3, 4, 5].map((i) => idOf(batch, i));
    expect(ids(dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { id: 'desc' } })))).toEqual([...asc].reverse());
    // slugs sort as text: -slug-1 … -slug-5 keep the numeric order here
    expect(ids(dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { slug: 'asc' } })))).toEqual(asc);
    expect(ids(dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { created_at: 'desc', title: 'asc' } })))).toEqual([...asc].reverse());
    expect(ids(dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { batch: 'asc', seq: 'asc' } })))).toEqual(asc);
  });

  it('after walks 250 rows in pages of 100 by the id, ascending, with no duplicate and no gap', async () => {
    const batch = await seed(250);
    const { ids, pages } = await walk(reader, { where: { batch }, select: ['id', 'seq'] }, ['id'], 100);
    expect(pages).toEqual([100, 100, 50]);
    expect(ids).toEqual(Array.from({ length: 250 }, (_, i) => idOf(batch, i + 1)));
  });

  it('after walks 250 rows in pages of 100 by a declared unique index (batch, seq) descending, with no duplicate and no gap', async () => {
    const batch = await seed(250);
    const { ids, pages } = await walk(reader, { where: { batch }, orderBy: { batch: 'desc', seq: 'desc' } }, ['batch', 'seq'], 100);
    expect(pages).toEqual([100, 100, 50]);
    expect(ids).toEqual(Array.from({ length: 250 }, (_, i) => idOf(batch, 250 - i)));
    expect(new Set(ids).size).toBe(250);
  });

  it('rows written mid-walk before the position neither shift nor repeat the next page', async () => {
    const batch = await seed(250);
    const first = dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { batch: 'asc', seq: 'asc' }, limit: 100 }));
    // a row inserted before the position does not shift the next page (offset paging would repeat a row)
    await db()`INSERT INTO items (id, batch, seq, slug) VALUES (${`${batch}-early`}, ${batch}, 0, ${`${batch}-slug-0`})`;
    const last = first[99]!;
    const second = dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { batch: 'asc', seq: 'asc' }, after: { batch: last.batch, seq: last.seq }, limit: 100 }));
    expect(second.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 101 + i));
  });

  it('after naming a hidden column is 403', async () => {
    expectError(await as(reader, { orderBy: { id: 'asc' }, after: { id: 'x', secret: 's1' } }), 403, 'ColumnNotAllowed');
    expectError(await as(reader, { orderBy: { secret: 'asc', id: 'asc' }, after: { secret: 's1', id: 'x' } }), 403, 'ColumnNotAllowed');
  });

  it('a hostile after is 400 every time, leaks nothing, and the bridge keeps serving', async () => {
    const batch = await seed(3);
    const cases: Array<[string, unknown, string]> = [
      ['a number for a text id', { after: { id: 5 } }, 'InvalidValue'],
      ['a string for an int', { orderBy: { batch: 'asc', seq: 'asc' }, after: { batch, seq: '1 OR 1=1' } }, 'InvalidValue'],
      ['SQL in an int', { orderBy: { batch: 'asc', seq: 'asc' }, after: { batch, seq: "1); DROP TABLE items; --" } }, 'InvalidValue'],
      ['a fractional int', { orderBy: { batch: 'asc', seq: 'asc' }, after: { batch, seq: 1.5 } }, 'InvalidValue'],
      ['SQL in a text value of the wrong column set', { orderBy: { batch: 'asc', seq: 'asc' }, after: { batch: "x'); DROP TABLE items; --" } }, 'InvalidAfter'],
      ['a nested object', { after: { id: { $gt: '' } } }, 'InvalidValue'],
      ['a nested array', { after: { id: [[['x']]] } }, 'InvalidValue'],
      ['null', { after: { id: null } }, 'InvalidValue'],
      ['a NUL byte', { after: { id: 'a\u0000b' } }, 'InvalidValue'],
      ['an extra column', { after: { id: 'x', title: 't' } }, 'InvalidAfter'],
      ['a missing column', { orderBy: { batch: 'asc', seq: 'asc' }, after: { seq: 1 } }, 'InvalidAfter'],
      ['columns that do not identify a row', { orderBy: { batch: 'asc' }, after: { batch } }, 'InvalidAfter'],
      ['a timestamp column (answers round it to the millisecond)', { orderBy: { created_at: 'asc', id: 'asc' }, after: { created_at: '2026-01-01T00:00:01.000Z', id: 'x' } }, 'InvalidAfter'],
      ['a nullable column', { orderBy: { id: 'asc', title: 'asc' }, after: { id: 'x', title: 't' } }, 'InvalidAfter'],
      ['mixed directions', { orderBy: { batch: 'asc', seq: 'desc' }, after: { batch, seq: 1 } }, 'AfterMixedDirections'],
      ['an unindexed first column', { orderBy: { title: 'asc', id: 'asc' }, after: { title: 't', id: 'x' } }, 'OrderByNotIndexed'],
      ['an injection string as a column', { after: { 'id" > \'\' OR 1=1 --': 'x' } }, 'UnknownColumn'],
      ['__proto__ as a column', { after: JSON.parse('{"__proto__": {"id": "x"}}') as unknown }, 'UnknownColumn'],
      ['an empty object', { after: {} }, 'InvalidParams'],
      ['an array', { after: ['id', 'x'] }, 'InvalidParams'],
      ['SQL text', { after: "id > '' OR 1=1" }, 'InvalidParams'],
      ['a number', { after: 1 }, 'InvalidParams'],
    ];
    for (const [what, params, code] of cases) {
      const res = await as(reader, { where: { batch }, ...(params as object) });
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error?.code, what).toBe(code);
      expect(res.body.error?.message, what).not.toMatch(/DROP|OR 1=1|secret/);
    }
    // a text position that looks like SQL is only a value: every id of the batch sorts after a quote
    const after = dataOf<Row[]>(await as(reader, { where: { batch }, after: { id: "' OR ''='" } }));
    expect(after.map((r) => r.id)).toEqual([1, 2, 3].map((i) => idOf(batch, i)));
    expect(dataOf(await as(reader, { where: { batch }, after: { id: `${idOf(batch, 3)}' OR ''='` } }))).toEqual([]);
    expect(bridge.child.exitCode).toBeNull();
    expect(dataOf<Row[]>(await as(reader, { where: { batch }, orderBy: { id: 'asc' } }))).toHaveLength(3);
    expect(await db()`SELECT count(*)::int AS n FROM items WHERE batch = ${batch}`).toEqual([{ n: 3 }]);
  });

  it('an answer past the byte limit says how to page with after, and paging that way gets every row', async () => {
    const batch = await seed(12, { body: 'y'.repeat(16_384) });
    const res = await as(reader, { where: { batch }, select: ['id', 'body'] });
    expectError(res, 400, 'ResponseTooLarge');
    const fit = Number(/(\d+) rows? fit/.exec(res.body.error!.message)?.[1]);
    expect(fit).toBeGreaterThan(0);
    expect(res.body.error?.hint).toContain(`limit ${fit}`);
    expect(res.body.error?.hint).toContain('after');
    const { ids } = await walk(reader, { where: { batch }, select: ['id', 'body'], orderBy: { id: 'asc' } }, ['id'], fit);
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => idOf(batch, i + 1)));
  });
});
