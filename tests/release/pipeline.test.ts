import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { Informer } from '../../core/kube/informer.ts';
import { createLogger } from '../../core/log.ts';
import { adminClient, eventually, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { schemaV1, schemaV2, schemaDropName, permissions, columnsOf } from '../support/fixtures.ts';

/**
 * The release pipeline end to end (OPERATOR-001, OPERATOR-005, flows 01/06/07/08): the built stk,
 * a real Git repository, the operator process, real databases. Assertions read the database
 * catalog and the resources, not only exit codes. Each `it` makes its own project, environments,
 * databases and repository (`fresh`), so any one runs alone; only the operator is shared.
 */

const client = await adminClient();

interface Fresh {
  project: string;
  namespace: string;
  repo: TestRepo;
  db: Record<string, TestDatabase>;
  inProject: string[];
  env(name: string): Promise<Environment & KubeObject>;
  apply(env: string, schema: string, message?: string): Promise<{ ref: string; id: string }>;
}

describe('release pipeline', { timeout: 240_000 }, () => {
  let operator: OperatorProcess;
  const databases: TestDatabase[] = [];

  /** A project with the given environments, each with its own database as connection `main`. */
  async function fresh(envs: string[] = ['dev']): Promise<Fresh> {
    const project = uniqueName('pipe');
    const namespace = `stk-${project}`;
    const inProject = ['--project', project];
    expectExit(await stk(['project', 'create', project]));
    const db: Record<string, TestDatabase> = {};
    for (const e of envs) {
      expectExit(await stk(['env', 'create', ...inProject, e]));
      db[e] = await createTestDatabase(`pipeline_${e}`);
      databases.push(db[e]);
      expectExit(await stk(['connections', 'set', ...inProject, '--env', e, '--name', 'main', '--db-url', db[e].url]));
    }
    const repo = await createTestRepo();
    return {
      project,
      namespace,
      repo,
      db,
      inProject,
      env: (name) => client.get<Environment & KubeObject>(Kinds.Environment, name, namespace),
      async apply(env, schema, message = 'change') {
        const ref = await repo.commit({ 'schema/app.yaml': schema, 'config/permissions.yaml': permissions }, message);
        const res = await stk(['apply', ...inProject, '--env', env, '--ref', ref, '--repo', repo.dir]);
        expectExit(res);
        return { ref, id: /^releaseId=(rel-[0-9a-f]{16})$/m.exec(res.stdout)![1]! };
      },
    };
  }

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-pipeline') });
    await waitForOperatorReady(operator);
  });

  afterEach(async () => {
    for (const db of databases.splice(0)) await db.drop();
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it('applies a ref: prints the releaseId, creates the tables, moves the pointer; the same ref again reuses the release', async () => {
    const { inProject, repo, db, env, namespace } = await fresh();
    const ref = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(res);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(res.stdout)?.[1];
    expect(id).toBeDefined();
    expect(res.stdout).toMatch(/^apply main: succeeded/m);
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await env('dev');
    expect(dev.status?.currentRelease).toBe(id);
    expect(dev.status?.history?.[0]).toMatchObject({ release: id, ref, action: 'apply' });
    const release = await client.get<Release & KubeObject>(Kinds.Release, id!, namespace);
    expect(release.spec.ref).toBe(ref);
    expect(release.metadata.finalizers).toContain('santokit.io/release-in-use');
    const snapshot = await client.get<KubeObject & { data: Record<string, string> }>(Kinds.ConfigMap, `santokit-permissions-${id}`, namespace);
    expect(JSON.parse(snapshot.data['permissions.json']!).tables.users.select[0].roles).toEqual(['admin']);

    const again = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(again);
    expect(again.stdout).toContain(`releaseId=${id}`);
    const current = await stk(['release', 'current', ...inProject, '--env', 'dev', '--json']);
    expect(JSON.parse(current.stdout)).toMatchObject({ env: 'dev', releaseId: id, ref });
  });

  it('reads the ref, never the working tree', async () => {
    const { inProject, repo, db, env, namespace } = await fresh();
    const ref = await repo.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'v2');
    // The working tree says something else entirely (and is not even valid).
    repo.write({ 'schema/app.yaml': 'this is: [not valid', 'config/permissions.yaml': 'tables: {}\n' });
    const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(res);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(res.stdout)![1]!;
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);
    const release = await client.get<Release & KubeObject>(Kinds.Release, id, namespace);
    expect(release.spec.ref).toBe(ref);
    expect(Object.keys((release.spec.schema as { main: { tables: Record<string, unknown> } }).main.tables)).toEqual(['users']);
    expect(release.spec.permissions).toMatchObject({ tables: { users: {} } });
    expect((await env('dev')).status?.currentRelease).toBe(id);
    // and the working tree was left as it was
    expect(await repo.git.status()).toMatchObject({ modified: expect.arrayContaining(['schema/app.yaml']) });
  });

  it('--dry-run prints the plan and changes nothing anywhere', async () => {
    const { inProject, repo, db, env, namespace, apply } = await fresh();
    await apply('dev', schemaV1, 'v1');
    const ref = await repo.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'v2');
    const before = (await env('dev')).status?.currentRelease;
    const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir, '--dry-run']);
    expectExit(res);
    expect(res.stdout).toMatch(/^plan main: 1 step\(s\)$/m);
    expect(res.stdout).toMatch(/ADD COLUMN "age" integer/i);
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id', 'name']);
    expect((await env('dev')).status?.currentRelease).toBe(before);
    // stk deleted the Release it planned with before it exited; the operator's in-use finalizer
    // lets it go a moment later (no environment names it), so it is at most on its way out.
    const ofRef = async () => (await client.list<Release & KubeObject>(Kinds.Release, { namespace })).items.filter((r) => r.spec.ref === ref);
    expect((await ofRef()).filter((r) => !r.metadata.deletionTimestamp)).toEqual([]);
    await eventually(async () => ((await ofRef()).length === 0 ? true : undefined), { timeoutMs: 30_000, what: `the dry run's release of ${ref} to be gone` });
  });

  it('refuses a destructive change without --force, changing nothing; applies it with --force', async () => {
    const { inProject, repo, db, env, apply } = await fresh();
    await apply('dev', schemaV1, 'v1');
    const ref = await repo.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name');
    const before = (await env('dev')).status?.currentRelease;
    await db.dev!.sql`INSERT INTO users (id, email, name) VALUES ('u1', 'a@example.com', 'Ann')`;
    const refused = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(refused, 2);
    expect(refused.stderr).toContain('DestructiveChange');
    expect(refused.stderr).toMatch(/drop column .*name/i);
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await env('dev');
    expect(dev.status?.currentRelease).toBe(before);
    expect(dev.spec.release).toBe(before);

    const forced = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir, '--force']);
    expectExit(forced);
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id']);
    expect(await db.dev!.sql`SELECT id, email FROM users`).toEqual([{ id: 'u1', email: 'a@example.com' }]);
  });

  it('blocks apply while the database drifted from the current release, listing the differences; reverting unblocks', async () => {
    const { inProject, repo, db, env, namespace, apply } = await fresh();
    await apply('dev', schemaDropName, 'email only');
    const ref = await repo.commit({ 'schema/app.yaml': schemaV2.replace('      name: { type: string }\n', ''), 'config/permissions.yaml': permissions }, 'add age');
    // a change to a declared column is drift (a column a DBA adds is only information: issue 15)
    await db.dev!.sql`ALTER TABLE users ALTER COLUMN email SET DEFAULT 'sneaky'`;
    const blocked = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(blocked, 2);
    expect(blocked.stderr).toContain('SchemaDrift');
    expect(blocked.stderr).toMatch(/main: .*sneaky/);
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id']);
    const dev = await env('dev');
    expect(dev.status?.lastRequest).toMatchObject({ outcome: 'Failed', reason: 'SchemaDrift' });
    // The refused request left the previous release serving: the environment is Ready again.
    const ready = await kubectl(['wait', '-n', namespace, 'environment/dev', '--for', 'condition=Ready', '--timeout', '30s']);
    expectExit(ready);

    await db.dev!.sql`ALTER TABLE users ALTER COLUMN email DROP DEFAULT`;
    const ok = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(ok);
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['age', 'email', 'id']);
  });

  it('promotes dev to prod only when prod satisfies the release; rolls back by id; unknown ids are 404', async () => {
    const { inProject, repo, db, env, apply } = await fresh(['dev', 'prod']);
    const v1 = await apply('dev', schemaV1, 'v1');
    const v2 = await apply('dev', schemaV2, 'v2');
    const devRelease = v2.id;
    const rejected = await stk(['release', 'promote', ...inProject, '--from', 'dev', '--to', 'prod']);
    expectExit(rejected, 2);
    expect(rejected.stderr).toContain('PromotionBlocked');
    const prod = await env('prod');
    expect(prod.status?.currentRelease).toBeUndefined();
    expect(prod.spec.release).toBeUndefined();
    expect(await columnsOf(db.prod!.sql, 'users')).toEqual([]);

    // Bring prod's database to the release with --only schema (DDL, no pointer move), then promote.
    const schemaOnly = await stk(['apply', ...inProject, '--env', 'prod', '--ref', v2.ref, '--repo', repo.dir, '--only', 'schema']);
    expectExit(schemaOnly);
    expect((await env('prod')).status?.currentRelease).toBeUndefined();
    const promoted = await stk(['release', 'promote', ...inProject, '--from', 'dev', '--to', 'prod']);
    expectExit(promoted);
    expect((await env('prod')).status?.currentRelease).toBe(devRelease);

    const rolled = await stk(['release', 'rollback', ...inProject, '--env', 'dev', '--to-release-id', v1.id]);
    expectExit(rolled);
    expect((await env('dev')).status?.currentRelease).toBe(v1.id);
    // a rollback moves the pointer only: no DDL is undone
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    const unknown = await stk(['release', 'rollback', ...inProject, '--env', 'dev', '--to-release-id', 'rel-0000000000000000']);
    expectExit(unknown, 2);
    expect(unknown.stderr).toContain('does not exist');
    const notServed = await stk(['release', 'rollback', ...inProject, '--env', 'prod', '--to-release-id', v1.id]);
    expectExit(notServed, 2);
    expect(notServed.stderr).toContain('ReleaseNotInHistory');

    expect((await env('prod')).status?.history?.[0]).toMatchObject({ release: devRelease, action: 'promote', by: 'santokit-admin' });
    const show = await stk(['release', 'show', ...inProject, devRelease]);
    expectExit(show);
    expect(show.stdout).toContain(`releaseId=${devRelease}\nref=${v2.ref}\n`);
    expect(show.stdout).toMatch(/^tables main: users$/m);
    expect(show.stdout).toMatch(/^serving: prod$/m);
    expect(show.stdout).toMatch(/^served: dev, prod$/m);
    const missing = await stk(['release', 'show', ...inProject, 'rel-0000000000000000']);
    expectExit(missing, 2);

    const list = await stk(['release', 'list', ...inProject, '--env', 'dev', '--json']);
    const listed = JSON.parse(list.stdout) as { current: string; history: Array<{ release: string }> };
    expect(listed.current).toBe(v1.id);
    expect(listed.history.length).toBeGreaterThanOrEqual(2);
  });

  it('refuses invalid inputs before anything is written', async () => {
    const { inProject, repo, namespace } = await fresh();
    const ref = await repo.commit({ 'schema/app.yaml': 'version: 1\ntables:\n  users:\n    columns:\n      email: { type: strng }\n', 'config/permissions.yaml': permissions }, 'broken');
    const count = (await client.list(Kinds.Release, { namespace })).items.length;
    const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(res, 1);
    expect(res.stderr).toMatch(/schema\/app\.yaml:5:\d+/);
    const noPerms = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': null }, 'no permissions');
    const res2 = await stk(['apply', ...inProject, '--env', 'dev', '--ref', noPerms, '--repo', repo.dir]);
    expectExit(res2, 1);
    expect(res2.stderr).toContain('config/permissions.yaml');
    const badPerms = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': 'tables:\n  users:\n    select:\n      roles: [admin]\n      columns: [nope]\n' }, 'bad permissions');
    const res3 = await stk(['apply', ...inProject, '--env', 'dev', '--ref', badPerms, '--repo', repo.dir]);
    expectExit(res3, 1);
    expect(res3.stderr).toContain('unknown column "nope" of table users');
    expect((await client.list(Kinds.Release, { namespace })).items.length).toBe(count);
  });

  it('a release named by an environment waits for deletion, from its creation on; an unreferenced one goes at once', async () => {
    const { inProject, repo, env, namespace, apply } = await fresh();
    // Every version of each Release as the API server hands them out, the first (as created) included.
    const versions = new Map<string, KubeObject[]>();
    const watch = new Informer<KubeObject>(client, Kinds.Release, createLogger('test', 'silent'), { namespace, metadataOnly: true });
    watch.on('upsert', (o: KubeObject) => versions.set(o.metadata.name, [...(versions.get(o.metadata.name) ?? []), o]));
    watch.start();
    let current: string;
    try {
      await watch.waitForSync();
      current = (await apply('dev', schemaV1, 'v1')).id;
      // stk creates it protected: a delete before the operator has first seen it cannot take it
      // from under the environment that was just asked to serve it.
      const first = await eventually(async () => versions.get(current)?.[0], { timeoutMs: 10_000, what: `the watch to see release ${current}` });
      expect(first.metadata.finalizers).toEqual(['santokit.io/release-in-use']);
    } finally {
      watch.stop();
    }
    const del = await kubectl(['delete', 'release', current, '-n', namespace, '--wait=false']);
    expectExit(del);
    const stillThere = await client.get<Release & KubeObject>(Kinds.Release, current, namespace);
    expect(stillThere.metadata.deletionTimestamp).toBeDefined();
    expect((await env('dev')).status?.currentRelease).toBe(current);

    // --only schema makes a release that no environment names (no pointer, no history).
    const ref = await repo.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'v2');
    const schemaOnly = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', repo.dir, '--only', 'schema']);
    expectExit(schemaOnly);
    const unreferenced = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(schemaOnly.stdout)![1]!;
    expect(unreferenced).not.toBe(current);
    const gone = await kubectl(['delete', 'release', unreferenced, '-n', namespace, '--wait=true', '--timeout=30s']);
    expectExit(gone);
    expect(await client.find<Release & KubeObject>(Kinds.Release, unreferenced, namespace)).toBeUndefined();
  });
});
