import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCondition } from '../../core/api/conditions.ts';
import { Kinds, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { buildRelease } from '../../core/release/build.ts';
import { readRepoAtRef } from '../../core/release/source.ts';
import { releaseManifest } from '../../cli/manifests.ts';
import { adminClient, eventually, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { schemaV1, schemaDropName, permissions } from '../support/fixtures.ts';

/**
 * A Release reports the pipeline outcome itself (kstatus), so Flux (`wait: true`) and Argo CD see
 * it: the GitOps path writes Release objects and an Environment's `spec.release` directly, and the
 * Release turns Ready once every environment that wants it serves it, Stalled when one refused it.
 */

const client = await adminClient();

type Rel = Release & KubeObject;

describe('release status for GitOps tools', () => {
  let operator: OperatorProcess;
  let project: string;
  let namespace: string;
  let repo: TestRepo;
  const databases: TestDatabase[] = [];

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-relstatus') });
    await waitForOperatorReady(operator);
    project = uniqueName('relst');
    namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    repo = await createTestRepo();
  });

  afterAll(async () => {
    await operator?.stop();
    for (const db of databases) await db.drop();
  });

  /** A fresh environment of the project with its own database. */
  async function newEnvironment(prefix: string): Promise<string> {
    const name = uniqueName(prefix);
    const created = await stk(['env', 'create', '--project', project, name]);
    expectExit(created);
    const db = await createTestDatabase(`relstatus_${prefix}`);
    databases.push(db);
    const conn = await stk(['connections', 'set', '--project', project, '--env', name, '--name', 'main', '--db-url', db.url]);
    expectExit(conn);
    return name;
  }

  /** Commits the schema and creates its Release object as a GitOps repository would hold it. */
  async function createRelease(schema: string, message: string): Promise<Rel> {
    const ref = await repo.commit({ 'schema/app.yaml': schema, 'config/permissions.yaml': permissions }, message);
    const built = buildRelease(await readRepoAtRef(repo.dir, ref), { project, repo: repo.dir });
    await client.create(Kinds.Release, releaseManifest(built, namespace).release);
    return client.get<Rel>(Kinds.Release, built.id, namespace);
  }

  const setDesired = (env: string, spec: { release?: string; force?: boolean }) => client.patch(Kinds.Environment, env, namespace, { spec });

  /** Waits until the Release's conditions satisfy `check`, for its current generation. */
  function releaseWhen(id: string, what: string, check: (r: Rel) => boolean, timeoutMs = 45_000): Promise<Rel> {
    return eventually(
      async () => {
        const r = await client.get<Rel>(Kinds.Release, id, namespace);
        return r.status?.observedGeneration === r.metadata.generation && check(r) ? r : undefined;
      },
      { what: `release ${id}: ${what}`, timeoutMs },
    );
  }

  it('a release no environment wants is Available; once an environment serves it, Ready=True (Succeeded) naming it', async () => {
    const env = await newEnvironment('served');
    const release = await createRelease(schemaV1, 'v1');
    const idle = await releaseWhen(release.metadata.name, 'Ready', (r) => findCondition(r.status, 'Ready')?.status === 'True');
    expect(findCondition(idle.status, 'Ready')).toMatchObject({ reason: 'Available', message: 'not named by any environment' });

    await setDesired(env, { release: release.metadata.name });
    const served = await releaseWhen(release.metadata.name, 'served', (r) => findCondition(r.status, 'Ready')?.reason === 'Succeeded');
    expect(findCondition(served.status, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded', message: `served by ${env}`, observedGeneration: served.metadata.generation });
    expect(findCondition(served.status, 'Stalled')).toBeUndefined();
    expect(findCondition(served.status, 'Reconciling')).toBeUndefined();
    expect(served.status?.servedBy).toEqual([env]);
    expect(served.status?.observedGeneration).toBe(served.metadata.generation);
    // What Flux's kstatus and `kubectl wait` read.
    const wait = await kubectl(['wait', '-n', namespace, `release/${release.metadata.name}`, '--for', 'condition=Ready', '--timeout', '10s']);
    expectExit(wait);
    const wide = await kubectl(['get', 'release', release.metadata.name, '-n', namespace, '-o', 'wide']);
    expect(wide.stdout).toMatch(/STATUS\s+SERVED-BY/);
    expect(wide.stdout).toContain('Succeeded');
    expect(wide.stdout).toContain(env);
  });

  it('a GitOps change after an stk apply is answered once: the pointer does not swing back to what stk asked for', async () => {
    const env = await newEnvironment('mixed');
    const viaStk = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1 by stk');
    const applied = await stk(['apply', '--project', project, '--env', env, '--ref', viaStk, '--repo', repo.dir]);
    expectExit(applied);
    const first = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(applied.stdout)![1]!;
    // The same schema with another rule: moving between the two runs no DDL either way.
    const rules = `${permissions}    insert:\n      - roles: [admin]\n`;
    const ref = await repo.commit({ 'config/permissions.yaml': rules }, 'v2 by GitOps');
    const built = buildRelease(await readRepoAtRef(repo.dir, ref), { project, repo: repo.dir });
    await client.create(Kinds.Release, releaseManifest(built, namespace).release);
    const second = await client.get<Rel>(Kinds.Release, built.id, namespace);

    await setDesired(env, { release: second.metadata.name });
    await eventually(async () => ((await client.get<Environment & KubeObject>(Kinds.Environment, env, namespace)).status?.currentRelease === second.metadata.name ? true : undefined), {
      what: 'the GitOps release to serve',
      timeoutMs: 45_000,
    });
    // A later request (a drift check) is answered after anything the spec change set off.
    const drift = await stk(['schema', 'drift', '--project', project, '--env', env]);
    expectExit(drift);
    const after = await client.get<Environment & KubeObject>(Kinds.Environment, env, namespace);
    expect(after.status?.currentRelease).toBe(second.metadata.name);
    expect((after.status?.history ?? []).map((h) => h.release)).toEqual([second.metadata.name, first]);
    expect(findCondition(after.status, 'Ready')?.status).toBe('True');
  });

  it('a destructive release without spec.force is Stalled (DestructiveChange, Ready=False); spec.force=true makes it Ready', async () => {
    const env = await newEnvironment('destr');
    const v1 = await createRelease(schemaV1, 'v1 for destructive');
    await setDesired(env, { release: v1.metadata.name });
    await releaseWhen(v1.metadata.name, 'served', (r) => findCondition(r.status, 'Ready')?.reason === 'Succeeded');

    const drop = await createRelease(schemaDropName, 'drop name');
    await setDesired(env, { release: drop.metadata.name });
    const stalled = await releaseWhen(drop.metadata.name, 'Stalled', (r) => findCondition(r.status, 'Stalled')?.status === 'True');
    expect(findCondition(stalled.status, 'Stalled')).toMatchObject({ reason: 'DestructiveChange', observedGeneration: stalled.metadata.generation });
    const ready = findCondition(stalled.status, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'DestructiveChange', observedGeneration: stalled.metadata.generation });
    expect(ready?.message).toMatch(new RegExp(`^environment ${env}: the plan has destructive steps`));
    expect(ready?.message).toMatch(/drop column .*name/i);
    expect(findCondition(stalled.status, 'Reconciling')).toBeUndefined();
    expect(stalled.status?.servedBy).toEqual([]);
    // The release it replaces keeps serving, and says so.
    const previous = await client.get<Rel>(Kinds.Release, v1.metadata.name, namespace);
    expect(previous.status?.servedBy).toEqual([env]);

    await setDesired(env, { force: true });
    const forced = await releaseWhen(drop.metadata.name, 'served after force', (r) => findCondition(r.status, 'Ready')?.reason === 'Succeeded');
    expect(findCondition(forced.status, 'Ready')).toMatchObject({ status: 'True', message: `served by ${env}`, observedGeneration: forced.metadata.generation });
    expect(findCondition(forced.status, 'Stalled')).toBeUndefined();
    expect(forced.status?.servedBy).toEqual([env]);
    // The replaced release is no longer wanted by anyone: Available, still named (history).
    const old = await releaseWhen(v1.metadata.name, 'no longer served', (r) => (r.status?.servedBy ?? []).length === 0);
    expect(findCondition(old.status, 'Ready')).toMatchObject({ status: 'True', reason: 'Available', message: `named by ${env}` });
    const e = await client.get<Environment & KubeObject>(Kinds.Environment, env, namespace);
    expect(e.status?.currentRelease).toBe(drop.metadata.name);
  });
});
