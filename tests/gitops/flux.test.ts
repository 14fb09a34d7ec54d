import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Kinds, RELEASE_IN_USE_FINALIZER, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import {
  applyFluxObject,
  conditionOf,
  deleteFluxObject,
  exampleManifest,
  fluxLogTail,
  FluxKinds,
  fluxStartTimeoutMs,
  getFluxObject,
  isReady,
  requestReconcile,
  revisionSha,
  startFlux,
  stopFlux,
  type FluxObject,
} from '../support/flux.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git-http.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { schemaV1, schemaV2, schemaDropName, permissions, columnsOf } from '../support/fixtures.ts';

/**
 * GitOps end to end with real Flux: `stk --emit` writes Santokit manifests into a Git repository,
 * a push reaches source-controller over HTTP (git http-backend), kustomize-controller applies them
 * with `wait: true`, and the operator runs the release pipeline against real databases. The Flux
 * objects are the examples in config/gitops/flux/, pointed at the test's repository.
 *
 * The Flux controllers, the operator and the Git server are shared by the file (started once);
 * each case has its own project, GitOps repository, GitRepository and Kustomizations, application
 * repository and databases, so a case runs alone (`-t`) and one failure cannot cascade. The cases
 * run concurrently: each mostly waits on the controllers.
 */

const client = await adminClient();

type Rel = Release & KubeObject;
type Env = Environment & KubeObject;

let operator: OperatorProcess | undefined;
let gitServer: GitHttpServer;

/** One case's GitOps setup: a project whose manifests live in their own repository, applied by their own Flux objects. */
interface GitOps {
  readonly project: string;
  readonly namespace: string;
  /** the application repository releases are built from */
  readonly source: TestRepo;
  /** the working clone stk --emit writes into */
  readonly work: TestRepo;
  env(name: string): Promise<Env>;
  release(id: string): Promise<Rel>;
  kustomization(): Promise<FluxObject>;
  diagnostics(): string;
  /** a database of this case, dropped when the case ends */
  database(prefix: string): Promise<TestDatabase>;
  /** runs stk with --emit into the working clone; fails the case on a non-zero exit */
  emit(args: string[], input?: string): Promise<string>;
  /** `stk apply --emit` of a ref of the application repository on an environment; the release id */
  applyRef(envName: string, ref: string): Promise<string>;
  /** commits what stk wrote (if anything is left uncommitted), pushes, and asks Flux to fetch now */
  push(message: string): Promise<{ sha: string; pushedAt: number }>;
  /** the project's Kustomization once it applied `sha` and reports Ready */
  kustomizationReadyAt(sha: string, timeoutMs?: number): Promise<FluxObject>;
}

/**
 * A new GitOps setup for the case of `context` (removed when it ends; the context's own hook, as the
 * cases run concurrently): the example Flux objects pointed at a fresh repository on the Git
 * server, with short intervals.
 */
async function gitOps(context: TestContext, prefix: string): Promise<GitOps> {
  const project = uniqueName(prefix);
  const namespace = `stk-${project}`;
  const sourceName = `${project}-gitops`;
  const projectsKs = `${project}-projects`;
  const projectKs = project;
  const databases: TestDatabase[] = [];
  context.onTestFinished(async () => {
    // Leave what Flux applied in place (as other suites leave their projects): orphan, then delete.
    for (const [kind, name] of [
      [FluxKinds.Kustomization, projectKs],
      [FluxKinds.Kustomization, projectsKs],
      [FluxKinds.GitRepository, sourceName],
    ] as const) {
      if (kind === FluxKinds.Kustomization) await client.patch(kind, name, 'flux-system', { spec: { deletionPolicy: 'Orphan', suspend: true } }).catch(() => undefined);
      await deleteFluxObject(kind, name).catch(() => undefined);
    }
    for (const db of databases) await db.drop();
  });

  const gitopsRepo = await gitServer.createBareRepo(project);
  const work = await createTestRepo('stk-gitops');
  await work.git.addRemote('origin', gitopsRepo.dir);
  const source = await createTestRepo('stk-source');

  const repo = exampleManifest('gitrepository.yaml');
  repo.metadata.name = sourceName;
  repo.spec = { ...repo.spec, url: gitopsRepo.url, interval: '10s', timeout: '20s' };
  const projects = exampleManifest('kustomization-projects.yaml');
  projects.metadata.name = projectsKs;
  projects.spec = { ...projects.spec, sourceRef: { kind: 'GitRepository', name: sourceName }, interval: '1m', retryInterval: '2s', timeout: '30s' };
  const own = exampleManifest('kustomization-project.yaml');
  own.metadata.name = projectKs;
  own.spec = { ...own.spec, sourceRef: { kind: 'GitRepository', name: sourceName }, dependsOn: [{ name: projectsKs }], path: `./${project}`, interval: '1m', retryInterval: '2s', timeout: '90s' };
  await work.commit({ 'README.md': 'Santokit resources, written by stk --emit\n' }, 'empty GitOps repository');
  await work.git.push('origin', 'main', ['--set-upstream']);
  for (const obj of [repo, projects, own]) await applyFluxObject(obj);

  const kustomization = () => getFluxObject(FluxKinds.Kustomization, projectKs);
  const diagnostics = () => `\n--- kustomize-controller ---\n${fluxLogTail('kustomize-controller')}\n--- source-controller ---\n${fluxLogTail('source-controller', 15)}`;
  const emit = async (args: string[], input?: string): Promise<string> => {
    const res = await stk([...args, '--emit', work.dir], input === undefined ? {} : { input });
    expectExit(res);
    return res.stdout;
  };
  return {
    project,
    namespace,
    source,
    work,
    env: (name) => client.get<Env>(Kinds.Environment, name, namespace),
    release: (id) => client.get<Rel>(Kinds.Release, id, namespace),
    kustomization,
    diagnostics,
    async database(prefix) {
      const db = await createTestDatabase(prefix);
      databases.push(db);
      return db;
    },
    emit,
    async applyRef(envName, ref) {
      const out = await emit(['apply', '--project', project, '--env', envName, '--ref', ref, '--repo', source.dir]);
      const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(out)?.[1];
      expect(id, out).toBeDefined();
      return id!;
    },
    async push(message) {
      await work.git.add(['-A']);
      if (!(await work.git.status()).isClean()) await work.git.commit(message);
      const sha = (await work.git.revparse(['HEAD'])).trim();
      const pushedAt = Date.now();
      await work.git.push('origin', 'main');
      // What a push webhook (Flux's Receiver) or `flux reconcile source git` does.
      await requestReconcile(FluxKinds.GitRepository, sourceName);
      return { sha, pushedAt };
    },
    kustomizationReadyAt(sha, timeoutMs = 120_000) {
      return eventually(
        async () => {
          const ks = await kustomization();
          return revisionSha(ks.status?.lastAppliedRevision) === sha && isReady(ks) ? ks : undefined;
        },
        { timeoutMs, intervalMs: 250, what: `Kustomization ${projectKs} Ready at ${sha}${diagnostics()}` },
      );
    },
  };
}

/**
 * The project, environment dev on its own database (connection main) and release v1 (schemaV1)
 * applied there, written by `stk --emit` into the working clone and not pushed yet.
 */
async function devWithV1(g: GitOps): Promise<{ v1: string; v1Ref: string; devDb: TestDatabase }> {
  const devDb = await g.database('flux_dev');
  await g.emit(['project', 'create', g.project]);
  await g.emit(['env', 'create', '--project', g.project, 'dev']);
  await g.emit(['connections', 'set', '--project', g.project, '--env', 'dev', '--name', 'main', '--db-url', '-'], devDb.url);
  const v1Ref = await g.source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
  const v1 = await g.applyRef('dev', v1Ref);
  return { v1, v1Ref, devDb };
}

/** The common start of a case: devWithV1, pushed and Ready. Returns v1's id, ref and database. */
async function devServingV1(g: GitOps): Promise<{ v1: string; v1Ref: string; devDb: TestDatabase }> {
  const { v1, v1Ref, devDb } = await devWithV1(g);
  await g.kustomizationReadyAt((await g.push('project, dev, release v1')).sha);
  expect((await g.env('dev')).status?.currentRelease).toBe(v1);
  return { v1, v1Ref, devDb };
}

describe.concurrent('GitOps with Flux', () => {
  beforeAll(async () => {
    await startFlux();
    operator = await startOperator({ leaseName: uniqueName('lease-flux') });
    await waitForOperatorReady(operator);
    gitServer = await startGitHttpServer();
  }, fluxStartTimeoutMs);

  afterAll(async () => {
    await operator?.stop();
    await gitServer?.close();
    await stopFlux();
  }, 120_000);

  it('a pushed release is applied by Flux; the Kustomization is Ready only once the Release is', async (context) => {
    const { expect } = context;
    const g = await gitOps(context, 'flux-apply');
    const { v1, v1Ref: ref, devDb } = await devWithV1(g);
    const written = (await g.work.git.raw(['ls-files', '--others', '--exclude-standard'])).trim().split('\n');
    expect(written.sort()).toEqual([`${g.project}/connections/dev-main.yaml`, `${g.project}/environments/dev.yaml`, `${g.project}/releases/${v1}.yaml`, `projects/${g.project}.yaml`].sort());
    const { sha, pushedAt } = await g.push('project, dev, release v1');

    // Sample both until the Release is Ready as served by dev (Succeeded; a Release the operator
    // looked at before it saw the Environment is Ready as merely Available for a moment): the
    // Kustomization must never be Ready at this revision before the Release is.
    let early: string | undefined;
    const readyRelease = await eventually(
      async () => {
        const ks = await g.kustomization();
        const r = await client.find<Rel>(Kinds.Release, v1, g.namespace);
        if (!isReady(r) && isReady(ks) && revisionSha(ks.status?.lastAppliedRevision) === sha) early = JSON.stringify(r?.status);
        return isReady(r) && conditionOf(r, 'Ready')?.reason === 'Succeeded' ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100, what: `Release ${v1} Ready, served by dev${g.diagnostics()}` },
    );
    console.log(`push→Release Ready: ${Date.now() - pushedAt} ms`);
    expect(early, 'Kustomization was Ready before its Release').toBeUndefined();

    const ks = await g.kustomizationReadyAt(sha);
    console.log(`push→Kustomization Ready: ${Date.now() - pushedAt} ms`);
    const ksReadyAt = Date.parse(conditionOf(ks, 'Ready')!.lastTransitionTime);
    const releaseReadyAt = Date.parse(conditionOf(readyRelease, 'Ready')!.lastTransitionTime);
    expect(ksReadyAt).toBeGreaterThanOrEqual(releaseReadyAt);
    expect(isReady(await getFluxObject(FluxKinds.Kustomization, `${g.project}-projects`))).toBe(true);

    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await g.env('dev');
    expect(dev.status?.currentRelease).toBe(v1);
    expect(dev.status?.history?.[0]).toMatchObject({ release: v1, ref, action: 'apply' });
    expect(readyRelease.status?.servedBy).toEqual(['dev']);
  }, 240_000);

  it('a destructive change without force stalls the Release and fails the health check; a fixing commit recovers', async (context) => {
    const { expect } = context;
    const g = await gitOps(context, 'flux-drop');
    const { v1, devDb } = await devServingV1(g);

    const dropRef = await g.source.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name');
    const drop = await g.applyRef('dev', dropRef);
    const { sha } = await g.push('release: drop users.name');

    // Flux may apply the Environment a moment before the Release it names: until the Release
    // arrives the Environment waits (Reconciling, ReleaseNotFound), then the request runs again
    // and is refused for what it is.
    const stalled = await eventually(
      async () => {
        const r = await g.release(drop);
        const why = conditionOf(r, 'Stalled');
        return why?.status === 'True' && why.reason === 'DestructiveChange' ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `Release ${drop} Stalled (DestructiveChange)${g.diagnostics()}` },
    );
    expect(conditionOf(stalled, 'Ready')?.status).toBe('False');
    const dev = await g.env('dev');
    expect(conditionOf(dev, 'Stalled')).toMatchObject({ status: 'True', reason: 'DestructiveChange' });
    expect(dev.status?.currentRelease).toBe(v1);

    const failed = await eventually(
      async () => {
        const ks = await g.kustomization();
        const ready = conditionOf(ks, 'Ready');
        return revisionSha(ks.status?.lastAttemptedRevision) === sha && ready?.status === 'False' && ready.reason === 'HealthCheckFailed' ? ks : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `Kustomization ${g.project} failing its health check at ${sha}${g.diagnostics()}` },
    );
    // The stalled objects count as Failed; Flux fails fast on the first it sees and names it with
    // that status (its message carries no condition reasons: those are on the objects, above).
    const message = conditionOf(failed, 'Ready')?.message ?? '';
    expect([`Environment/${g.namespace}/dev status: 'Failed'`, `Release/${g.namespace}/${drop} status: 'Failed'`].some((m) => message.includes(m)), message).toBe(true);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);

    const fixRef = await g.source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'keep name');
    const fix = await g.applyRef('dev', fixRef);
    const fixed = await g.push('release: keep users.name');
    await g.kustomizationReadyAt(fixed.sha);
    expect(isReady(await g.release(fix))).toBe(true);
    // servedBy follows the Environment's status in the Release's own next reconcile: awaited.
    const served = await eventually(
      async () => {
        const r = await g.release(fix);
        return conditionOf(r, 'Ready')?.reason === 'Succeeded' ? r : undefined;
      },
      { timeoutMs: 30_000, what: `Release ${fix} served by dev` },
    );
    expect(isReady(served)).toBe(true);
    expect(served.status?.servedBy).toEqual(['dev']);
    // No environment wants the refused release any more: it is merely available.
    const refused = await g.release(drop);
    expect(conditionOf(refused, 'Stalled')?.status).not.toBe('True');
    expect(conditionOf(refused, 'Ready')).toMatchObject({ status: 'True', reason: 'Available' });
    const devAfter = await g.env('dev');
    expect(devAfter.status?.currentRelease).toBe(fix);
    expect(conditionOf(devAfter, 'Stalled')?.status).not.toBe('True');
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
  }, 300_000);

  it('promotes dev to prod through Git; reverting the promote commit moves prod back without undoing DDL', async (context) => {
    const { expect } = context;
    const g = await gitOps(context, 'flux-promote');
    // One push: prod on its own database serving v1, dev on its own serving v2.
    const devDb = await g.database('flux_dev');
    const prodDb = await g.database('flux_prod');
    await g.emit(['project', 'create', g.project]);
    for (const [env, db] of [['dev', devDb], ['prod', prodDb]] as const) {
      await g.emit(['env', 'create', '--project', g.project, env]);
      await g.emit(['connections', 'set', '--project', g.project, '--env', env, '--name', 'main', '--db-url', '-'], db.url);
    }
    const v1Ref = await g.source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    const prodBase = await g.applyRef('prod', v1Ref);
    const v2Ref = await g.source.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'add age');
    const v2 = await g.applyRef('dev', v2Ref);
    await g.kustomizationReadyAt((await g.push('prod: v1, dev: v2')).sha);
    expect((await g.env('prod')).status?.currentRelease).toBe(prodBase);
    expect((await g.env('dev')).status?.currentRelease).toBe(v2);
    expect(await columnsOf(prodDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    const out = await g.emit(['release', 'promote', '--project', g.project, '--from', 'dev', '--to', 'prod', '--commit']);
    const promoteCommit = /^commit=([0-9a-f]{40})$/m.exec(out)?.[1];
    expect(promoteCommit, out).toBeDefined();
    expect(out).toContain(`wrote ${g.project}/environments/prod.yaml`);
    const promoted = await g.push('promote (already committed by stk)');
    expect(promoted.sha).toBe(promoteCommit);
    await g.kustomizationReadyAt(promoted.sha);
    const prod = await g.env('prod');
    expect(prod.spec.release).toBe(v2);
    expect(prod.status?.currentRelease).toBe(v2);
    expect(await columnsOf(prodDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    await g.work.git.raw(['revert', '--no-edit', promoteCommit!]);
    const reverted = await g.push('revert (already committed by git)');
    await g.kustomizationReadyAt(reverted.sha);
    const back = await g.env('prod');
    expect(back.spec.release).toBe(prodBase);
    expect(back.status?.currentRelease).toBe(prodBase);
    expect(back.status?.history?.[0]).toMatchObject({ release: prodBase, action: 'rollback' });
    // A rollback is a pointer move: the column v2 added stays.
    expect(await columnsOf(prodDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);
  }, 360_000);

  it('pruning keeps a Release an environment still names until it is free, and deletes an unreferenced one', async (context) => {
    const { expect } = context;
    const g = await gitOps(context, 'flux-prune');
    const { v1 } = await devServingV1(g);
    // One push: a release applied to dev and at once replaced by v2 in the same commit (never
    // served, so nothing names it), and v2 itself (dev moves on; v1 stays in its history).
    const unusedRef = await g.source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'superseded before it was pushed');
    const unused = await g.applyRef('dev', unusedRef);
    const v2Ref = await g.source.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'add age');
    const v2 = await g.applyRef('dev', v2Ref);
    expect(new Set([v1, unused, v2]).size).toBe(3);
    await g.kustomizationReadyAt((await g.push('releases: unused, v2')).sha);
    const dev = await g.env('dev');
    expect(dev.status?.currentRelease).toBe(v2);
    expect((dev.status?.history ?? []).map((h) => h.release)).toContain(v1);
    expect(dev.spec.release).not.toBe(unused);
    expect((dev.status?.history ?? []).map((h) => h.release)).not.toContain(unused);

    await g.work.git.rm([`${g.project}/releases/${v1}.yaml`, `${g.project}/releases/${unused}.yaml`]);
    const pruned = await g.push('remove two releases');
    await g.kustomizationReadyAt(pruned.sha);
    await eventually(async () => ((await client.find<Rel>(Kinds.Release, unused, g.namespace)) === undefined ? true : undefined), {
      timeoutMs: 60_000,
      what: `unreferenced Release ${unused} to be deleted`,
    });
    // Flux's prune sets the deletion timestamp; the operator then says why the Release stays (its
    // reconcile follows the delete, so the condition is awaited, not read at the same instant).
    const kept = await eventually(
      async () => {
        const r = await g.release(v1);
        return r.metadata.deletionTimestamp && conditionOf(r, 'Reconciling')?.reason === 'InUse' ? r : undefined;
      },
      { timeoutMs: 60_000, what: `Release ${v1} marked for deletion by Flux's prune and kept InUse` },
    );
    expect(kept.metadata.finalizers).toContain(RELEASE_IN_USE_FINALIZER);
    expect(conditionOf(kept, 'Reconciling')).toMatchObject({ status: 'True', reason: 'InUse' });
    const inventory = ((await g.kustomization()).status as { inventory?: { entries?: Array<{ id: string }> } }).inventory?.entries ?? [];
    expect(inventory.map((e) => e.id).filter((id) => id.includes(v1) || id.includes(unused))).toEqual([]);
  }, 240_000);
});
