import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, Kinds, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, stk, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { call, createApiKey, createDataplaneProject, dataOf, expectError, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type ApiKey, type BridgeProcess, type CallResponse, type DataplaneProject } from './support.ts';

/**
 * Permissions from `config/permissions.yaml` enforced by the data plane: a table of cases, each a
 * real key (roles) calling the real bridge, with the database read directly where rows matter.
 */

const client = await adminClient();

const schema = `version: 1
tables:
  notes:
    id: { generate: ulid }
    columns:
      title: { type: string }
      secret: { type: string }
      owner_id: { type: string }
      tier: { type: string }
`;

const permissions = `tables:
  notes:
    select:
      - roles: [admin]
        columns: ["*"]
      - roles: [reader]
        columns: [id, title, owner_id]
        condition: 'resource.owner_id == request.auth.sub'
      - roles: [gold]
        columns: [id, title, tier]
        condition: 'resource.tier == "gold"'
      - roles: [writer]
        columns: [id, title, owner_id]
        condition: 'resource.owner_id == request.auth.sub'
    insert:
      - roles: [admin]
        columns: [title, secret, owner_id, tier]
      - roles: [writer]
        columns: [title]
        condition: 'resource.owner_id == request.auth.sub'
    update:
      - roles: [writer]
        columns: [title]
        condition: 'resource.owner_id == request.auth.sub'
      - roles: [admin]
    delete:
      - roles: [writer]
        condition: 'resource.owner_id == request.auth.sub'
`;

type Row = Record<string, unknown>;

describe('permissions', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  let releaseId: string;
  const k: Record<'admin' | 'reader' | 'writer' | 'gold' | 'readerThenAdmin' | 'goldAndReader' | 'nobody', ApiKey> = {} as never;
  const as = (who: keyof typeof k, path: string, params: unknown = {}): Promise<CallResponse> => call(bridge, k[who].apiKey, path, params);
  const titles = (rows: Row[]) => rows.map((r) => r.title).sort();
  const db = () => p.dbs.dev!.sql;

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-perms');
    bridge = await startBridge();
    p = await createDataplaneProject('dpperm', ['dev']);
    releaseId = await p.apply('dev', { 'schema/app.yaml': schema, 'config/permissions.yaml': permissions });
    const roles: Record<keyof typeof k, string[]> = {
      admin: ['admin'],
      reader: ['reader'],
      writer: ['writer'],
      gold: ['gold'],
      // roles are matched against rules in file order, not in the key's order
      readerThenAdmin: ['reader', 'admin'],
      goldAndReader: ['gold', 'reader'],
      nobody: ['intern'],
    };
    for (const [name, r] of Object.entries(roles)) k[name as keyof typeof k] = await createApiKey(p.project, 'dev', r, name, bridge);
    await waitBridgeReady(bridge);
    // Ready says nothing of a namespace created after the bridge started: wait until dev is served.
    await waitServable(bridge, k.admin.apiKey, 'db/notes/select');
    const seed: Row[] = [
      { title: 'writer-gold', secret: 's1', owner_id: k.writer.keyId, tier: 'gold' },
      { title: 'reader-basic', secret: 's2', owner_id: k.reader.keyId, tier: 'basic' },
      { title: 'other-gold', secret: 's3', owner_id: 'someone-else', tier: 'gold' },
      { title: 'goldreader-basic', secret: 's4', owner_id: k.goldAndReader.keyId, tier: 'basic' },
    ];
    for (const data of seed) dataOf(await as('admin', 'db/notes/insert', { data }));
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  describe('select', () => {
    it.each([
      ['admin: first rule, every column, every row', 'admin', ['writer-gold', 'reader-basic', 'other-gold', 'goldreader-basic'], ['id', 'title', 'secret', 'owner_id', 'tier']],
      ['reader: auth.sub condition narrows to its own rows; columns limit what is returned', 'reader', ['reader-basic'], ['id', 'title', 'owner_id']],
      ['gold: a literal condition narrows to gold rows', 'gold', ['writer-gold', 'other-gold'], ['id', 'title', 'tier']],
      ['roles [reader, admin]: the admin rule comes first in the file and decides', 'readerThenAdmin', ['writer-gold', 'reader-basic', 'other-gold', 'goldreader-basic'], ['id', 'title', 'secret', 'owner_id', 'tier']],
      ['roles [gold, reader]: the reader rule comes first in the file and decides', 'goldAndReader', ['goldreader-basic'], ['id', 'title', 'owner_id']],
    ] as const)('%s', async (_what, who, expectedTitles, expectedColumns) => {
      const rows = dataOf<Row[]>(await as(who, 'db/notes/select'));
      expect(titles(rows)).toEqual([...expectedTitles].sort());
      for (const row of rows) expect(Object.keys(row)).toEqual(expectedColumns);
    });

    it('the condition is ANDed with the caller\'s where: asking for another owner\'s row finds nothing', async () => {
      expect(dataOf(await as('reader', 'db/notes/select', { where: { owner_id: 'someone-else' } }))).toEqual([]);
      expect(dataOf(await as('reader', 'db/notes/select', { where: { title: 'other-gold' } }))).toEqual([]);
    });

    it.each([
      ['selecting a hidden column', 'reader', { select: ['title', 'secret'] }, 'column secret of table notes'],
      ['filtering on a hidden column', 'reader', { where: { secret: 's3' } }, 'column secret of table notes'],
      ['ordering by a hidden column', 'gold', { orderBy: { owner_id: 'asc' } }, 'column owner_id of table notes'],
    ] as const)('%s is 403 naming the column', async (_what, who, params, named) => {
      const res = await as(who, 'db/notes/select', params);
      expectError(res, 403, 'ColumnNotAllowed');
      expect(res.body.error?.message).toContain(named);
    });

    it('a key whose roles match no rule is 403', async () => {
      expectError(await as('nobody', 'db/notes/select'), 403, 'PermissionDenied');
    });
  });

  describe('writes', () => {
    it('an insert under an auth.sub condition writes the caller as owner', async () => {
      const row = dataOf<Row>(await as('writer', 'db/notes/insert', { data: { title: 'mine' } }));
      expect(row).toEqual({ id: expect.any(String), title: 'mine', owner_id: k.writer.keyId });
      expect(await db()`SELECT owner_id, secret FROM notes WHERE id = ${row.id as string}`).toEqual([{ owner_id: k.writer.keyId, secret: null }]);
    });

    it.each([
      ['writing a column the rule does not list', 'writer', 'db/notes/insert', { data: { title: 't', secret: 'x' } }, 'column secret of table notes'],
      ['writing the condition column', 'writer', 'db/notes/insert', { data: { title: 't', owner_id: 'someone-else' } }, 'column owner_id of table notes'],
      ['updating a column the rule does not list', 'writer', 'db/notes/update', { where: { title: 'writer-gold' }, data: { tier: 'basic' } }, 'column tier of table notes'],
    ] as const)('%s is 403 naming it, and writes nothing', async (_what, who, path, params, named) => {
      const before = await db()`SELECT count(*)::int AS n, string_agg(coalesce(tier, '') || coalesce(secret, ''), ',' ORDER BY id) AS s FROM notes`;
      const res = await as(who, path, params);
      expectError(res, 403, 'ColumnNotAllowed');
      expect(res.body.error?.message).toContain(named);
      expect(await db()`SELECT count(*)::int AS n, string_agg(coalesce(tier, '') || coalesce(secret, ''), ',' ORDER BY id) AS s FROM notes`).toEqual(before);
    });

    it('an update of another owner\'s row affects 0 rows and leaves it unchanged; its own row affects 1', async () => {
      expect(dataOf(await as('writer', 'db/notes/update', { where: { title: 'other-gold' }, data: { title: 'hijacked' } }))).toEqual({ affected: 0 });
      expect(dataOf(await as('writer', 'db/notes/update', { where: { owner_id: 'someone-else' }, data: { title: 'hijacked' } }))).toEqual({ affected: 0 });
      expect(await db()`SELECT title FROM notes WHERE owner_id = 'someone-else'`).toEqual([{ title: 'other-gold' }]);
      // The writer's rows (the seed, and whatever an earlier case inserted): exactly one is renamed.
      const mine = async () => (await db()<Array<{ title: string }>>`SELECT title FROM notes WHERE owner_id = ${k.writer.keyId}`).map((r) => r.title).sort();
      const before = await mine();
      expect(before).toContain('writer-gold');
      expect(dataOf(await as('writer', 'db/notes/update', { where: { title: 'writer-gold' }, data: { title: 'writer-gold-2' } }))).toEqual({ affected: 1 });
      expect(await mine()).toEqual(before.map((t) => (t === 'writer-gold' ? 'writer-gold-2' : t)).sort());
    });

    it.each([
      ['update', { where: { owner_id: 'WRITER', secret: 's1' }, data: { title: 'probe' } }],
      ['update', { where: { owner_id: 'WRITER', secret: 'wrong' }, data: { title: 'probe' } }],
      ['delete', { where: { owner_id: 'WRITER', secret: 's1' } }],
      ['delete', { where: { owner_id: 'WRITER', secret: 'wrong' } }],
      ['update', { where: { tier: 'gold' }, data: { title: 'probe' } }],
    ] as const)('%s filtered on a column the caller cannot read is 403 whatever the value (no affected-count oracle): %j', async (op, params) => {
      const before = await db()`SELECT string_agg(title || coalesce(secret, ''), ',' ORDER BY id) AS s FROM notes`;
      const where = Object.fromEntries(Object.entries(params.where).map(([c, v]) => [c, v === 'WRITER' ? k.writer.keyId : v]));
      const res = await as('writer', `db/notes/${op}`, { ...params, where });
      expectError(res, 403, 'ColumnNotAllowed');
      expect(JSON.stringify(res.body)).not.toContain('affected');
      expect(await db()`SELECT string_agg(title || coalesce(secret, ''), ',' ORDER BY id) AS s FROM notes`).toEqual(before);
    });

    it('a delete of another owner\'s row affects 0 rows; with no delete rule it is 403', async () => {
      expect(dataOf(await as('writer', 'db/notes/delete', { where: { title: 'other-gold' } }))).toEqual({ affected: 0 });
      expect(await db()`SELECT count(*)::int AS n FROM notes WHERE title = 'other-gold'`).toEqual([{ n: 1 }]);
      expectError(await as('reader', 'db/notes/delete', { where: { title: 'reader-basic' } }), 403, 'PermissionDenied');
      expectError(await as('reader', 'db/notes/insert', { data: { title: 'x' } }), 403, 'PermissionDenied');
    });
  });

  describe('unsupported conditions', () => {
    it('are rejected by stk apply validation, before anything is written', async () => {
      const bad = permissions.replace(`'resource.tier == "gold"'`, `'resource.tier != "gold" || true'`);
      const ref = await p.repo.commit({ 'schema/app.yaml': schema, 'config/permissions.yaml': bad }, 'bad condition');
      const res = await stk(['apply', '--project', p.project, '--env', 'dev', '--ref', ref, '--repo', p.repo.dir]);
      expectExit(res, 1);
      expect(res.stderr).toContain('unsupported condition');
    });

    it('are a 400 if one ever reaches the data plane (a Release written by hand), never a silent pass', async () => {
      const current = await client.get<Release & KubeObject>(Kinds.Release, releaseId, p.namespace);
      const policy = structuredClone(current.spec.permissions) as { tables: { notes: { select: Array<{ condition: unknown }> } } };
      policy.tables.notes.select[2]!.condition = 'resource.tier != "gold"';
      const handMade = `rel-${randomBytes(8).toString('hex')}`;
      await client.create<Release & KubeObject>(Kinds.Release, {
        apiVersion: API_VERSION,
        kind: 'Release',
        metadata: { name: handMade, namespace: p.namespace },
        spec: { project: p.project, ref: current.spec.ref, schema: current.spec.schema, permissions: policy as unknown as Record<string, unknown> },
      });
      // GitOps path: point the environment at it; the operator runs the pipeline and moves the pointer.
      await client.patch(Kinds.Environment, 'dev', p.namespace, { spec: { release: handMade } });
      await eventually(async () => ((await client.get<Environment & KubeObject>(Kinds.Environment, 'dev', p.namespace)).status?.currentRelease === handMade ? true : undefined), {
        timeoutMs: 60_000,
        what: 'the hand-made release to serve',
      });
      await eventually(async () => ((await as('gold', 'db/notes/select')).status === 400 ? true : undefined), { timeoutMs: 10_000, what: 'the bridge to serve the hand-made release' });
      const res = await as('gold', 'db/notes/select');
      expectError(res, 400, 'UnsupportedCondition');
      // other rules of the same release still work
      expect((await as('admin', 'db/notes/select')).status).toBe(200);
    });
  });
});
