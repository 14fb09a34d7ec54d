import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

/** Several connections per environment, permission-only releases, drift reports, unreachable databases. */

const client = await adminClient();

const mainSchema = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false }
`;
const analyticsSchema = `version: 1
tables:
  events:
    connection: analytics
    id: { generate: auto_increment }
    columns:
      kind: { type: string, nullable: false }
`;
const permissionsV1 = 'tables:\n  users:\n    select: { roles: [admin] }\n';
const permissionsV2 = 'tables:\n  users:\n    select: { roles: [admin, reader], columns: [id] }\n';

const tablesOf = async (sql: postgres.Sql) =>
  (await sql<{ table_name: string }[]>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`).map((r) => r.table_name);

/**
 * Each case has its own environment with its own two databases (`dev`), so any one runs alone;
 * the operator, the project and the Git repository are shared. Every commit names all the files
 * its release holds, so no case depends on what an earlier one committed.
 */
describe('release pipeline across connections', { timeout: 240_000 }, () => {
  let operator: OperatorProcess;
  let project: string;
  let namespace: string;
  let repo: TestRepo;
  const databases: TestDatabase[] = [];

  /** A new environment with connections main and analytics on fresh databases; `served` applies the base release there first. */
  async function freshEnv(served: boolean): Promise<{ env: string; target: string[]; mainDb: TestDatabase; analyticsDb: TestDatabase; get(): Promise<Environment & KubeObject> }> {
    const env = uniqueName('dev');
    const target = ['--project', project, '--env', env];
    expectExit(await stk(['env', 'create', '--project', project, env]));
    const mainDb = await createTestDatabase('multi_main');
    const analyticsDb = await createTestDatabase('multi_analytics');
    databases.push(mainDb, analyticsDb);
    expectExit(await stk(['connections', 'set', ...target, '--name', 'main', '--db-url', mainDb.url]));
    expectExit(await stk(['connections', 'set', ...target, '--name', 'analytics', '--db-url', analyticsDb.url]));
    if (served) expectExit(await stk(['apply', ...target, '--ref', await baseRef(), '--repo', repo.dir]));
    return { env, target, mainDb, analyticsDb, get: () => client.get<Environment & KubeObject>(Kinds.Environment, env, namespace) };
  }

  /** Both schema files and the first permissions: the release every case starts from. */
  const baseRef = () => repo.commit({ 'schema/main.yaml': mainSchema, 'schema/analytics.yaml': analyticsSchema, 'config/permissions.yaml': permissionsV1 }, 'base');

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-connections-pipeline') });
    await waitForOperatorReady(operator);
    project = uniqueName('multi');
    namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    repo = await createTestRepo();
  });

  afterAll(async () => {
    await operator?.stop();
    for (const db of databases) await db.drop();
  });

  it('puts each table in the database of its connection', async () => {
    const { target, mainDb, analyticsDb } = await freshEnv(false);
    const ref = await baseRef();
    const res = await stk(['apply', ...target, '--ref', ref, '--repo', repo.dir]);
    expectExit(res);
    expect(res.stdout).toMatch(/^apply analytics: succeeded/m);
    expect(res.stdout).toMatch(/^apply main: succeeded/m);
    expect(await tablesOf(mainDb.sql)).toEqual(['users']);
    expect(await tablesOf(analyticsDb.sql)).toEqual(['events']);
  });

  it('--only permissions,release makes a new release without running DDL', async () => {
    const { target, mainDb, get } = await freshEnv(true);
    const before = (await get()).status!.currentRelease!;
    expect(before).toMatch(/^rel-/);
    const applied = async () => (await mainDb.sql`SELECT count(*)::int AS n FROM santokit.applied_releases`)[0]!.n as number;
    const bookkeeping = await applied();
    const ref = await repo.commit({ 'schema/main.yaml': mainSchema, 'schema/analytics.yaml': analyticsSchema, 'config/permissions.yaml': permissionsV2 }, 'reader may see ids');
    const res = await stk(['apply', ...target, '--ref', ref, '--repo', repo.dir, '--only', 'permissions,release']);
    expectExit(res);
    const id = /^releaseId=(\S+)$/m.exec(res.stdout)?.[1];
    expect(id).toBeDefined();
    expect(id).not.toBe(before);
    expect((await get()).status?.currentRelease).toBe(id);
    expect(await applied()).toBe(bookkeeping);
    expect(res.stdout).not.toMatch(/^apply /m);
    const release = await client.get<Release & KubeObject>(Kinds.Release, id!, namespace);
    expect(release.spec.permissions).toMatchObject({ tables: { users: { select: [{ roles: ['admin', 'reader'], columns: ['id'] }] } } });
  });

  it('reports drift on one connection with stk schema drift, and it blocks the next apply', async () => {
    const { target, env, mainDb, analyticsDb, get } = await freshEnv(true);
    const clean = await stk(['schema', 'drift', ...target]);
    expectExit(clean);
    expect(clean.stdout).toMatch(new RegExp(`^environment ${env} matches release rel-`));

    await analyticsDb.sql`ALTER TABLE events ALTER COLUMN kind DROP NOT NULL`;
    const drifted = await stk(['schema', 'drift', ...target]);
    expectExit(drifted, 2);
    expect(drifted.stdout).toMatch(/^ {2}- analytics: .*kind/m);
    expect(drifted.stdout).not.toMatch(/- main:/);
    const status = (await get()).status!;
    expect(status.conditions?.find((c) => c.type === 'Drifted')).toMatchObject({ status: 'True', reason: 'SchemaDrift' });
    expect(status.liveSchemaHash).toMatch(/^[0-9a-f]{64}$/);

    const ref = await repo.commit({ 'schema/main.yaml': `${mainSchema}      name: { type: string }\n`, 'schema/analytics.yaml': analyticsSchema, 'config/permissions.yaml': permissionsV1 }, 'add name');
    const blocked = await stk(['apply', ...target, '--ref', ref, '--repo', repo.dir]);
    expectExit(blocked, 2);
    expect(blocked.stderr).toContain('SchemaDrift');
    expect(blocked.stderr).toMatch(/analytics: .*kind/);
    expect((await mainDb.sql`SELECT column_name FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'`).length).toBe(0);

    await analyticsDb.sql`ALTER TABLE events ALTER COLUMN kind SET NOT NULL`;
    const fixed = await stk(['apply', ...target, '--ref', ref, '--repo', repo.dir]);
    expectExit(fixed);
    const after = await stk(['schema', 'drift', ...target, '--json']);
    expect(JSON.parse(after.stdout)).toMatchObject({ drifted: false, differences: [] });
  });

  it('an unreachable database fails connections test and apply, and no release is created', async () => {
    const other = uniqueName('down');
    expectExit(await stk(['env', 'create', '--project', project, other]));
    const refused = 'postgres://nobody:nothing@127.0.0.1:1/none';
    for (const name of ['main', 'analytics']) expectExit(await stk(['connections', 'set', '--project', project, '--env', other, '--name', name, '--db-url', refused]));
    const test = await stk(['connections', 'test', '--project', project, '--env', other, '--name', 'main']);
    expectExit(test, 3);
    expect(test.stderr).toContain('ConnectionRefused');
    const releasesBefore = (await client.list(Kinds.Release, { namespace })).items.length;
    const ref = await repo.commit({ 'schema/main.yaml': mainSchema, 'schema/analytics.yaml': analyticsSchema, 'config/permissions.yaml': `${permissionsV1}# another release\n` }, 'touch');
    const res = await stk(['apply', '--project', project, '--env', other, '--ref', ref, '--repo', repo.dir]);
    expectExit(res, 3);
    expect(res.stderr).toContain('not reachable');
    expect((await client.list(Kinds.Release, { namespace })).items.length).toBe(releasesBefore);
    expect((await client.get<Environment & KubeObject>(Kinds.Environment, other, namespace)).status?.currentRelease).toBeUndefined();
  });
});
