import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { schemaV1, schemaV2, schemaDropName, permissions, columnsOf } from '../support/fixtures.ts';

/**
 * The release pipeline end to end (OPERATOR-001, OPERATOR-005, flows 01/06/07/08): the built stk,
 * a real Git repository, the operator process, real databases. Assertions read the database
 * catalog and the resources, not only exit codes.
 */

const client = await adminClient();

describe('release pipeline', () => {
  let operator: OperatorProcess;
  let project: string;
  let namespace: string;
  let repo: TestRepo;
  let devDb: TestDatabase;
  let prodDb: TestDatabase;
  const env = (name: string) => client.get<Environment & KubeObject>(Kinds.Environment, name, namespace);
  const inProject = () => ['--project', project];

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-pipeline') });
    await waitForOperatorReady(operator);
    project = uniqueName('pipe');
    namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    for (const e of ['dev', 'prod']) expectExit(await stk(['env', 'create', ...inProject(), e]));
    devDb = await createTestDatabase('pipeline_dev');
    prodDb = await createTestDatabase('pipeline_prod');
    expectExit(await stk(['connections', 'set', ...inProject(), '--env', 'dev', '--name', 'main', '--db-url', devDb.url]));
    expectExit(await stk(['connections', 'set', ...inProject(), '--env', 'prod', '--name', 'main', '--db-url', prodDb.url]));
    expectExit(await stk(['connections', 'test', ...inProject(), '--env', 'dev']));
    expectExit(await stk(['connections', 'test', ...inProject(), '--env', 'prod']));
    repo = await createTestRepo();
  });

  afterAll(async () => {
    await operator?.stop();
    await devDb?.drop();
    await prodDb?.drop();
  });

  it('applies a ref: prints the releaseId, creates the tables, moves the pointer; the same ref again reuses the release', async () => {
    const ref = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    const res = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(res);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(res.stdout)?.[1];
    expect(id).toBeDefined();
    expect(res.stdout).toMatch(/^apply main: succeeded/m);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await env('dev');
    expect(dev.status?.currentRelease).toBe(id);
    expect(dev.status?.history?.[0]).toMatchObject({ release: id, ref, action: 'apply' });
    const release = await client.get<Release & KubeObject>(Kinds.Release, id!, namespace);
    expect(release.spec.ref).toBe(ref);
    expect(release.metadata.finalizers).toContain('santokit.io/release-in-use');
    const snapshot = await client.get<KubeObject & { data: Record<string, string> }>(Kinds.ConfigMap, `santokit-permissions-${id}`, namespace);
    expect(JSON.parse(snapshot.data['permissions.json']!).tables.users.select[0].roles).toEqual(['admin']);

    const again = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(again);
    expect(again.stdout).toContain(`releaseId=${id}`);
    const current = await stk(['release', 'current', ...inProject(), '--env', 'dev', '--json']);
    expect(JSON.parse(current.stdout)).toMatchObject({ env: 'dev', releaseId: id, ref });
  });

  it('reads the ref, never the working tree', async () => {
    const ref = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1 again');
    repo.write({ 'schema/app.yaml': 'this is: [not valid' });
    const res = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir, '--dry-run']);
    expectExit(res);
    await repo.git.checkout(['--', '.']);
  });

  it('--dry-run prints the plan and changes nothing anywhere', async () => {
    const ref = await repo.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'v2');
    const before = (await env('dev')).status?.currentRelease;
    const res = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir, '--dry-run']);
    expectExit(res);
    expect(res.stdout).toMatch(/^plan main: 1 step\(s\)$/m);
    expect(res.stdout).toMatch(/ADD COLUMN "age" integer/i);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    expect((await env('dev')).status?.currentRelease).toBe(before);
    const releases = await client.list<Release & KubeObject>(Kinds.Release, { namespace });
    expect(releases.items.filter((r) => r.spec.ref === ref)).toEqual([]);
  });

  it('refuses a destructive change without --force, changing nothing; applies it with --force', async () => {
    const ref = await repo.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name');
    const before = (await env('dev')).status?.currentRelease;
    await devDb.sql`INSERT INTO users (id, email, name) VALUES ('u1', 'a@example.com', 'Ann')`;
    const refused = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(refused, 2);
    expect(refused.stderr).toContain('DestructiveChange');
    expect(refused.stderr).toMatch(/drop column .*name/i);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await env('dev');
    expect(dev.status?.currentRelease).toBe(before);
    expect(dev.spec.release).toBe(before);

    const forced = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir, '--force']);
    expectExit(forced);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id']);
    expect(await devDb.sql`SELECT id, email FROM users`).toEqual([{ id: 'u1', email: 'a@example.com' }]);
  });

  it('blocks apply while the database drifted from the current release, listing the differences; reverting unblocks', async () => {
    const ref = await repo.commit({ 'schema/app.yaml': schemaV2.replace('      name: { type: string }\n', ''), 'config/permissions.yaml': permissions }, 'add age');
    // a change to a declared column is drift (a column a DBA adds is only information: issue 15)
    await devDb.sql`ALTER TABLE users ALTER COLUMN email SET DEFAULT 'sneaky'`;
    const blocked = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(blocked, 2);
    expect(blocked.stderr).toContain('SchemaDrift');
    expect(blocked.stderr).toMatch(/main: .*sneaky/);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id']);
    const dev = await env('dev');
    expect(dev.status?.lastRequest).toMatchObject({ outcome: 'Failed', reason: 'SchemaDrift' });
    // The refused request left the previous release serving: the environment is Ready again.
    const ready = await kubectl(['wait', '-n', namespace, 'environment/dev', '--for', 'condition=Ready', '--timeout', '30s']);
    expectExit(ready);

    await devDb.sql`ALTER TABLE users ALTER COLUMN email DROP DEFAULT`;
    const ok = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(ok);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['age', 'email', 'id']);
  });

  it('promotes dev to prod only when prod satisfies the release; rolls back by id; unknown ids are 404', async () => {
    const devRelease = (await env('dev')).status!.currentRelease!;
    const rejected = await stk(['release', 'promote', ...inProject(), '--from', 'dev', '--to', 'prod']);
    expectExit(rejected, 2);
    expect(rejected.stderr).toContain('PromotionBlocked');
    const prod = await env('prod');
    expect(prod.status?.currentRelease).toBeUndefined();
    expect(prod.spec.release).toBeUndefined();
    expect(await columnsOf(prodDb.sql, 'users')).toEqual([]);

    // Bring prod's database to the release with --only schema (DDL, no pointer move), then promote.
    const ref = (await client.get<Release & KubeObject>(Kinds.Release, devRelease, namespace)).spec.ref;
    const schemaOnly = await stk(['apply', ...inProject(), '--env', 'prod', '--ref', ref, '--repo', repo.dir, '--only', 'schema']);
    expectExit(schemaOnly);
    expect((await env('prod')).status?.currentRelease).toBeUndefined();
    const promoted = await stk(['release', 'promote', ...inProject(), '--from', 'dev', '--to', 'prod']);
    expectExit(promoted);
    expect((await env('prod')).status?.currentRelease).toBe(devRelease);

    const history = (await env('dev')).status!.history!;
    const previous = history.find((h) => h.release !== devRelease)!.release;
    const rolled = await stk(['release', 'rollback', ...inProject(), '--env', 'dev', '--to-release-id', previous]);
    expectExit(rolled);
    expect((await env('dev')).status?.currentRelease).toBe(previous);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['age', 'email', 'id']);

    const unknown = await stk(['release', 'rollback', ...inProject(), '--env', 'dev', '--to-release-id', 'rel-0000000000000000']);
    expectExit(unknown, 2);
    expect(unknown.stderr).toContain('does not exist');
    const notServed = await stk(['release', 'rollback', ...inProject(), '--env', 'prod', '--to-release-id', previous]);
    expectExit(notServed, 2);
    expect(notServed.stderr).toContain('ReleaseNotInHistory');

    expect((await env('prod')).status?.history?.[0]).toMatchObject({ release: devRelease, action: 'promote', by: 'santokit-admin' });
    const show = await stk(['release', 'show', ...inProject(), devRelease]);
    expectExit(show);
    expect(show.stdout).toContain(`releaseId=${devRelease}\nref=${ref}\n`);
    expect(show.stdout).toMatch(/^tables main: users$/m);
    expect(show.stdout).toMatch(/^serving: prod$/m);
    expect(show.stdout).toMatch(/^served: dev, prod$/m);
    const missing = await stk(['release', 'show', ...inProject(), 'rel-0000000000000000']);
    expectExit(missing, 2);

    const list = await stk(['release', 'list', ...inProject(), '--env', 'dev', '--json']);
    const listed = JSON.parse(list.stdout) as { current: string; history: Array<{ release: string }> };
    expect(listed.current).toBe(previous);
    expect(listed.history.length).toBeGreaterThanOrEqual(2);
  });

  it('refuses invalid inputs before anything is written', async () => {
    const ref = await repo.commit({ 'schema/app.yaml': 'version: 1\ntables:\n  users:\n    columns:\n      email: { type: strng }\n', 'config/permissions.yaml': permissions }, 'broken');
    const count = (await client.list(Kinds.Release, { namespace })).items.length;
    const res = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(res, 1);
    expect(res.stderr).toMatch(/schema\/app\.yaml:5:\d+/);
    const noPerms = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': null }, 'no permissions');
    const res2 = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', noPerms, '--repo', repo.dir]);
    expectExit(res2, 1);
    expect(res2.stderr).toContain('config/permissions.yaml');
    const badPerms = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': 'tables:\n  users:\n    select:\n      roles: [admin]\n      columns: [nope]\n' }, 'bad permissions');
    const res3 = await stk(['apply', ...inProject(), '--env', 'dev', '--ref', badPerms, '--repo', repo.dir]);
    expectExit(res3, 1);
    expect(res3.stderr).toContain('unknown column "nope" of table users');
    expect((await client.list(Kinds.Release, { namespace })).items.length).toBe(count);
  });

  it('a release named by an environment waits for deletion; an unreferenced one goes at once', async () => {
    const current = (await env('dev')).status!.currentRelease!;
    const del = await kubectl(['delete', 'release', current, '-n', namespace, '--wait=false']);
    expectExit(del);
    const stillThere = await client.get<Release & KubeObject>(Kinds.Release, current, namespace);
    expect(stillThere.metadata.deletionTimestamp).toBeDefined();
    expect((await env('dev')).status?.currentRelease).toBe(current);
  });
});
