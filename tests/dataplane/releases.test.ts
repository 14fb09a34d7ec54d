import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, stk, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { call, createApiKey, createDataplaneProject, dataOf, expectError, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type ApiKey, type BridgeProcess, type DataplaneProject } from './support.ts';
import { schemaV1, schemaV2 } from '../support/fixtures.ts';

/**
 * OPERATOR-005 through the data plane: each environment serves its *current* release and the
 * bridge follows apply, promote and rollback within seconds — same process, no restart.
 */

const client = await adminClient();

// v1b: v1's schema with v2's rules (a permissions-only release: promote needs no DDL)
const permissionsV1b = `tables:
  users:
    select:
      - roles: [admin]
        columns: ["*"]
      - roles: [auditor]
        columns: [id, name]
    insert: { roles: [admin] }
`;
const permissionsV1 = `tables:
  users:
    select:
      - roles: [admin]
        columns: ["*"]
    insert: { roles: [admin] }
`;
// v2: schemaV2 adds a column; auditors may read users, admins may update
const permissionsV2 = `tables:
  users:
    select:
      - roles: [admin]
        columns: ["*"]
      - roles: [auditor]
        columns: [id, age]
    insert: { roles: [admin] }
    update: { roles: [admin] }
`;

/**
 * Each `it` owns the environments it moves (staging from qa; prod from dev), so every `it` runs
 * alone and in any order: the shared fixtures (operator, bridge, project, keys, one seeded row per
 * target) are only read.
 */
describe('the data plane follows release pointer moves', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  let v1: string;
  const keys: Record<string, ApiKey> = {};
  const current = async (env: string) => (await client.get<Environment & KubeObject>(Kinds.Environment, env, p.namespace)).status?.currentRelease;

  /** Polls a call until it answers `status`; returns how long that took. */
  async function until(key: ApiKey, path: string, params: unknown, status: number): Promise<number> {
    const started = Date.now();
    await eventually(async () => ((await call(bridge, key.apiKey, path, params)).status === status ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: `${path} to answer ${status}` });
    return Date.now() - started;
  }

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-releases');
    bridge = await startBridge();
    p = await createDataplaneProject('dprel', ['qa', 'staging', 'dev', 'prod']);
    v1 = await p.apply('dev', { 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissionsV1 });
    const v1Ref = (await p.repo.git.revparse(['HEAD'])).trim();
    for (const env of ['qa', 'staging', 'prod']) expect(await p.applyRef(env, v1Ref)).toBe(v1);
    for (const env of ['qa', 'staging', 'dev', 'prod']) {
      keys[`${env}-admin`] = await createApiKey(p.project, env, ['admin'], undefined, bridge);
      keys[`${env}-auditor`] = await createApiKey(p.project, env, ['auditor'], undefined, bridge);
    }
    await waitBridgeReady(bridge);
    // Ready says nothing of a namespace created after the bridge started: wait until each env is served.
    for (const env of ['qa', 'staging', 'dev', 'prod']) await waitServable(bridge, keys[`${env}-admin`]!.apiKey, 'db/users/select');
    for (const env of ['staging', 'prod']) dataOf(await call(bridge, keys[`${env}-admin`]!.apiKey, 'db/users/insert', { data: { email: 'p@example.com', name: 'Prod' } }));
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  it('a permissions-only promote (qa → staging) is served on the target within seconds; rollback brings the old rule back', async () => {
    const v1b = await p.apply('qa', { 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissionsV1b });
    expectError(await call(bridge, keys['staging-auditor']!.apiKey, 'db/users/select'), 403, 'PermissionDenied');
    const promoted = await stk(['release', 'promote', '--project', p.project, '--from', 'qa', '--to', 'staging']);
    expectExit(promoted);
    expect(await current('staging')).toBe(v1b);
    expect(await until(keys['staging-auditor']!, 'db/users/select', {}, 200)).toBeLessThan(5_000);
    expect(dataOf(await call(bridge, keys['staging-auditor']!.apiKey, 'db/users/select'))).toEqual([{ id: expect.any(String), name: 'Prod' }]);

    const rolled = await stk(['release', 'rollback', '--project', p.project, '--env', 'staging', '--to-release-id', v1]);
    expectExit(rolled);
    expect(await until(keys['staging-auditor']!, 'db/users/select', {}, 403)).toBeLessThan(5_000);
    expectError(await call(bridge, keys['staging-auditor']!.apiKey, 'db/users/select'), 403, 'PermissionDenied');
    const moves = bridge.records().filter((r) => r.msg === 'serving release' && r.environment === `${p.namespace}/staging`).map((r) => r.release);
    expect(moves).toEqual([v1, v1b, v1]);
  });

  it('apply v2 on dev, promote it to prod, roll prod back: each served within seconds, by the same process', async () => {
    // v1 serves on prod: the column v2 adds is unknown and the auditor has no rule
    expectError(await call(bridge, keys['prod-admin']!.apiKey, 'db/users/select', { select: ['id', 'age'] }), 400, 'UnknownColumn');
    expectError(await call(bridge, keys['prod-auditor']!.apiKey, 'db/users/select'), 403, 'PermissionDenied');

    // apply of v2 on dev is served on dev within seconds, while prod keeps v1
    const v2 = await p.apply('dev', { 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissionsV2 });
    expect(v2).not.toBe(v1);
    expect(await until(keys['dev-auditor']!, 'db/users/select', {}, 200)).toBeLessThan(5_000);
    expectError(await call(bridge, keys['prod-auditor']!.apiKey, 'db/users/select'), 403, 'PermissionDenied');

    // prod's database needs v2's schema first (promote moves a pointer, never DDL)
    const ref = (await client.get<KubeObject & { spec: { ref: string } }>(Kinds.Release, v2, p.namespace)).spec.ref;
    expectExit(await stk(['apply', '--project', p.project, '--env', 'prod', '--ref', ref, '--repo', p.repo.dir, '--only', 'schema']));
    expect(await current('prod')).toBe(v1);
    // DDL alone changes nothing the data plane serves
    expectError(await call(bridge, keys['prod-admin']!.apiKey, 'db/users/select', { select: ['id', 'age'] }), 400, 'UnknownColumn');

    // after promote, /call on prod sees the new column and the new rule
    expectExit(await stk(['release', 'promote', '--project', p.project, '--from', 'dev', '--to', 'prod']));
    expect(await current('prod')).toBe(v2);
    expect(await until(keys['prod-auditor']!, 'db/users/select', {}, 200)).toBeLessThan(5_000);
    expect(dataOf(await call(bridge, keys['prod-auditor']!.apiKey, 'db/users/select'))).toEqual([{ id: expect.any(String), age: null }]);
    expect(dataOf(await call(bridge, keys['prod-admin']!.apiKey, 'db/users/update', { where: { email: 'p@example.com' }, data: { age: 33 } }))).toEqual({ affected: 1 });
    expect(dataOf(await call(bridge, keys['prod-admin']!.apiKey, 'db/users/select', { select: ['email', 'age'] }))).toEqual([{ email: 'p@example.com', age: 33 }]);

    // after rollback, the old behaviour is back: the column is not selectable and the old rule decides
    expectExit(await stk(['release', 'rollback', '--project', p.project, '--env', 'prod', '--to-release-id', v1]));
    expect(await current('prod')).toBe(v1);
    expect(await until(keys['prod-auditor']!, 'db/users/select', {}, 403)).toBeLessThan(5_000);
    expectError(await call(bridge, keys['prod-admin']!.apiKey, 'db/users/select', { select: ['id', 'age'] }), 400, 'UnknownColumn');
    expectError(await call(bridge, keys['prod-admin']!.apiKey, 'db/users/update', { where: { email: 'p@example.com' }, data: { age: 1 } }), 403, 'PermissionDenied');
    // the rows are untouched: rollback never undoes DDL or data
    expect(await p.dbs.prod!.sql`SELECT email, age FROM users`).toEqual([{ email: 'p@example.com', age: 33 }]);
    // dev still serves v2
    expect((await call(bridge, keys['dev-auditor']!.apiKey, 'db/users/select')).status).toBe(200);

    // all of it without restarting the data plane, each pointer move logged
    expect(bridge.child.exitCode).toBeNull();
    const moves = bridge.records().filter((r) => r.msg === 'serving release' && r.environment === `${p.namespace}/prod`).map((r) => r.release);
    expect(moves).toEqual([v1, v2, v1]);
  });
});
