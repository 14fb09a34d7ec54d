import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
import { startGitHttpServer, type BareRepo, type GitHttpServer } from '../support/git-http.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { schemaV1, schemaV2, schemaDropName, permissions, columnsOf } from '../support/fixtures.ts';

/**
 * GitOps end to end with real Flux: `stk --emit` writes Santokit manifests into a Git repository,
 * a push reaches source-controller over HTTP (git http-backend), kustomize-controller applies them
 * with `wait: true`, and the operator runs the release pipeline against real databases. The Flux
 * objects are the examples in config/gitops/flux/, pointed at this test's repository.
 *
 * Flux, the operator and the Git server are shared by the file; every test has its own project,
 * GitOps repository, source repository, databases and Flux objects, and builds the history it
 * needs itself, so each runs alone (`-t`) and one failure does not cascade.
 */

const client = await adminClient();

type Rel = Release & KubeObject;
type Env = Environment & KubeObject;

describe('GitOps with Flux', () => {
  let operator: OperatorProcess;
  let gitServer: GitHttpServer;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    await startFlux();
    operator = await startOperator({ leaseName: uniqueName('lease-flux') });
    await waitForOperatorReady(operator);
    gitServer = await startGitHttpServer();
  }, fluxStartTimeoutMs);

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await gitServer?.close();
    await stopFlux();
  }, 120_000);

  /** One test's GitOps world: a project, its repositories and databases, Flux pointed at them. */
  async function gitopsProject() {
    const project = uniqueName('flux');
    const namespace = `stk-${project}`;
    const sourceName = `${project}-gitops`;
    const projectsKs = `${project}-projects`;
    const projectKs = project;
    const gitops: BareRepo = await gitServer.createBareRepo(project);
    /** the working clone stk --emit writes into */
    const work: TestRepo = await createTestRepo('stk-gitops');
    await work.git.addRemote('origin', gitops.dir);
    /** the application repository releases are built from */
    const source: TestRepo = await createTestRepo('stk-source');
    const devDb: TestDatabase = await createTestDatabase('flux_dev');
    const prodDb: TestDatabase = await createTestDatabase('flux_prod');
    cleanups.push(async () => {
      await devDb.drop();
      await prodDb.drop();
    });

    // The example objects of config/gitops/flux/, pointed at this test's repository and project,
    // with short intervals.
    const repo = exampleManifest('gitrepository.yaml');
    repo.metadata.name = sourceName;
    repo.spec = { ...repo.spec, url: gitops.url, interval: '10s', timeout: '20s' };
    const projects = exampleManifest('kustomization-projects.yaml');
    projects.metadata.name = projectsKs;
    projects.spec = { ...projects.spec, sourceRef: { kind: 'GitRepository', name: sourceName }, interval: '1m', retryInterval: '2s', timeout: '30s' };
    const own = exampleManifest('kustomization-project.yaml');
    own.metadata.name = projectKs;
    own.spec = { ...own.spec, sourceRef: { kind: 'GitRepository', name: sourceName }, dependsOn: [{ name: projectsKs }], path: `./${project}`, interval: '1m', retryInterval: '2s', timeout: '90s' };
    await work.commit({ 'README.md': 'Santokit resources, written by stk --emit\n' }, 'empty GitOps repository');
    await work.git.push('origin', 'main', ['--set-upstream']);
    cleanups.push(async () => {
      // Leave what Flux applied in place (as other suites leave their projects): orphan, then delete.
      for (const [kind, name] of [
        [FluxKinds.Kustomization, projectKs],
        [FluxKinds.Kustomization, projectsKs],
        [FluxKinds.GitRepository, sourceName],
      ] as const) {
        if (kind === FluxKinds.Kustomization) await client.patch(kind, name, 'flux-system', { spec: { deletionPolicy: 'Orphan', suspend: true } }).catch(() => undefined);
        await deleteFluxObject(kind, name).catch(() => undefined);
      }
    });
    for (const obj of [repo, projects, own]) await applyFluxObject(obj);

    const env = (name: string) => client.get<Env>(Kinds.Environment, name, namespace);
    const release = (id: string) => client.get<Rel>(Kinds.Release, id, namespace);
    const kustomization = () => getFluxObject(FluxKinds.Kustomization, projectKs);
    const diagnostics = () => `\n--- kustomize-controller ---\n${fluxLogTail('kustomize-controller')}\n--- source-controller ---\n${fluxLogTail('source-controller', 15)}`;

    /** Runs stk with --emit into the working clone; fails the test on a non-zero exit. */
    async function emit(args: string[], input?: string): Promise<string> {
      const res = await stk([...args, '--emit', work.dir], input === undefined ? {} : { input });
      expectExit(res);
      return res.stdout;
    }

    async function applyRef(envName: string, ref: string): Promise<string> {
      const out = await emit(['apply', '--project', project, '--env', envName, '--ref', ref, '--repo', source.dir]);
      const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(out)?.[1];
      expect(id, out).toBeDefined();
      return id!;
    }

    /** Commits what stk wrote (if anything is left uncommitted), pushes, and asks Flux to fetch now. */
    async function push(message: string): Promise<{ sha: string; pushedAt: number }> {
      await work.git.add(['-A']);
      if (!(await work.git.status()).isClean()) await work.git.commit(message);
      const sha = (await work.git.revparse(['HEAD'])).trim();
      const pushedAt = Date.now();
      await work.git.push('origin', 'main');
      // What a push webhook (Flux's Receiver) or `flux reconcile source git` does.
      await requestReconcile(FluxKinds.GitRepository, sourceName);
      return { sha, pushedAt };
    }

    /** The project's Kustomization once it applied `sha` and reports Ready. */
    async function kustomizationReadyAt(sha: string, timeoutMs = 120_000): Promise<FluxObject> {
      return eventually(
        async () => {
          const ks = await kustomization();
          return revisionSha(ks.status?.lastAppliedRevision) === sha && isReady(ks) ? ks : undefined;
        },
        { timeoutMs, intervalMs: 250, what: `Kustomization ${projectKs} Ready at ${sha}${diagnostics()}` },
      );
    }

    /** The project, dev and its connection written by stk --emit, and the v1 release built from the source repository. */
    async function writeDevV1(): Promise<{ ref: string; id: string }> {
      await emit(['project', 'create', project]);
      await emit(['env', 'create', '--project', project, 'dev']);
      await emit(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-'], devDb.url);
      const ref = await source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
      return { ref, id: await applyRef('dev', ref) };
    }

    /** What the first test shows, as a starting point for the others: dev serving v1 through Flux. */
    async function devServingV1(): Promise<{ ref: string; id: string }> {
      const v1 = await writeDevV1();
      await kustomizationReadyAt((await push('project, dev, release v1')).sha);
      expect((await env('dev')).status?.currentRelease).toBe(v1.id);
      return v1;
    }

    /**
     * Pushes a destructive release for dev (without --force) and waits until the operator refused
     * it (the Release Stalled with DestructiveChange: a first pass may see the Environment name
     * it before the Release exists) and Flux's health check failed on it.
     */
    async function refusedDrop(): Promise<{ id: string; sha: string; stalled: Rel; failed: FluxObject }> {
      const dropRef = await source.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name');
      const id = await applyRef('dev', dropRef);
      const { sha } = await push('release: drop users.name');
      const stalled = await eventually(
        async () => {
          const r = await release(id);
          const cond = conditionOf(r, 'Stalled');
          return cond?.status === 'True' && cond.reason === 'DestructiveChange' ? r : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250, what: `Release ${id} Stalled with DestructiveChange${diagnostics()}` },
      );
      const failed = await eventually(
        async () => {
          const ks = await kustomization();
          const ready = conditionOf(ks, 'Ready');
          return revisionSha(ks.status?.lastAttemptedRevision) === sha && ready?.status === 'False' && ready.reason === 'HealthCheckFailed' ? ks : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250, what: `Kustomization ${projectKs} failing its health check at ${sha}${diagnostics()}` },
      );
      return { id, sha, stalled, failed };
    }

    return { project, namespace, projectsKs, projectKs, work, source, devDb, prodDb, env, release, kustomization, diagnostics, emit, applyRef, push, kustomizationReadyAt, writeDevV1, devServingV1, refusedDrop };
  }

  it('a pushed release is applied by Flux; the Kustomization is Ready only once the Release is', async () => {
    const g = await gitopsProject();
    const { project } = g;
    const v1 = await g.writeDevV1();
    const written = (await g.work.git.raw(['ls-files', '--others', '--exclude-standard'])).trim().split('\n');
    expect(written.sort()).toEqual(
      [`${project}/connections/dev-main.yaml`, `${project}/environments/dev.yaml`, `${project}/releases/${v1.id}.yaml`, `projects/${project}.yaml`].sort(),
    );
    const { sha, pushedAt } = await g.push('project, dev, release v1');

    // Sample both until the Release is Ready: the Kustomization must never be Ready at this
    // revision before the Release is.
    let early: string | undefined;
    const readyRelease = await eventually(
      async () => {
        const ks = await g.kustomization();
        const r = await client.find<Rel>(Kinds.Release, v1.id, g.namespace);
        const releaseReady = isReady(r);
        if (!releaseReady && isReady(ks) && revisionSha(ks.status?.lastAppliedRevision) === sha) early = JSON.stringify(r?.status);
        return releaseReady ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100, what: `Release ${v1.id} Ready${g.diagnostics()}` },
    );
    console.log(`push→Release Ready: ${Date.now() - pushedAt} ms`);
    expect(early, 'Kustomization was Ready before its Release').toBeUndefined();

    const ks = await g.kustomizationReadyAt(sha);
    console.log(`push→Kustomization Ready: ${Date.now() - pushedAt} ms`);
    const ksReadyAt = Date.parse(conditionOf(ks, 'Ready')!.lastTransitionTime);
    const releaseReadyAt = Date.parse(conditionOf(readyRelease, 'Ready')!.lastTransitionTime);
    expect(ksReadyAt).toBeGreaterThanOrEqual(releaseReadyAt);
    expect(isReady(await getFluxObject(FluxKinds.Kustomization, g.projectsKs))).toBe(true);

    expect(await columnsOf(g.devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await g.env('dev');
    expect(dev.status?.currentRelease).toBe(v1.id);
    expect(dev.status?.history?.[0]).toMatchObject({ release: v1.id, ref: v1.ref, action: 'apply' });
    expect(readyRelease.status?.servedBy).toEqual(['dev']);
  }, 240_000);

  it('a destructive change without force stalls the Release and fails the health check; a fixing commit recovers', async () => {
    const g = await gitopsProject();
    const { namespace } = g;
    const v1 = await g.devServingV1();
    const drop = await g.refusedDrop();
    expect(conditionOf(drop.stalled, 'Stalled')?.reason).toBe('DestructiveChange');
    expect(conditionOf(drop.stalled, 'Ready')?.status).toBe('False');
    const dev = await g.env('dev');
    expect(conditionOf(dev, 'Stalled')).toMatchObject({ status: 'True', reason: 'DestructiveChange' });
    expect(dev.status?.currentRelease).toBe(v1.id);

    const failed = drop.failed;
    // The stalled objects count as Failed; Flux fails fast on the first it sees and names it with
    // that status (its message carries no condition reasons: those are on the objects, above).
    const message = conditionOf(failed, 'Ready')?.message ?? '';
    expect([`Environment/${namespace}/dev status: 'Failed'`, `Release/${namespace}/${drop.id} status: 'Failed'`].some((m) => message.includes(m)), message).toBe(true);
    expect(await columnsOf(g.devDb.sql, 'users')).toEqual(['email', 'id', 'name']);

    const fixRef = await g.source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'keep name');
    const fix = await g.applyRef('dev', fixRef);
    const fixed = await g.push('release: keep users.name');
    await g.kustomizationReadyAt(fixed.sha);
    const served = await g.release(fix);
    expect(isReady(served)).toBe(true);
    expect(served.status?.servedBy).toEqual(['dev']);
    // No environment wants the refused release any more: it is merely available.
    const refused = await g.release(drop.id);
    expect(conditionOf(refused, 'Stalled')?.status).not.toBe('True');
    expect(conditionOf(refused, 'Ready')).toMatchObject({ status: 'True', reason: 'Available' });
    const devAfter = await g.env('dev');
    expect(devAfter.status?.currentRelease).toBe(fix);
    expect(conditionOf(devAfter, 'Stalled')?.status).not.toBe('True');
    expect(await columnsOf(g.devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
  }, 300_000);

  it('promotes dev to prod through Git; reverting the promote commit moves prod back without undoing DDL', async () => {
    const g = await gitopsProject();
    const { project } = g;
    const v1 = await g.devServingV1();
    // prod gets its own database and first serves dev's current ref.
    await g.emit(['env', 'create', '--project', project, 'prod']);
    await g.emit(['connections', 'set', '--project', project, '--env', 'prod', '--name', 'main', '--db-url', '-'], g.prodDb.url);
    const prodBase = await g.applyRef('prod', v1.ref);
    const base = await g.push('prod: first release');
    await g.kustomizationReadyAt(base.sha);
    expect((await g.env('prod')).status?.currentRelease).toBe(prodBase);
    expect(await columnsOf(g.prodDb.sql, 'users')).toEqual(['email', 'id', 'name']);

    const v2Ref = await g.source.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'add age');
    const v2 = await g.applyRef('dev', v2Ref);
    const pushedV2 = await g.push('dev: release v2');
    await g.kustomizationReadyAt(pushedV2.sha);
    expect((await g.env('dev')).status?.currentRelease).toBe(v2);
    expect(await columnsOf(g.devDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    const out = await g.emit(['release', 'promote', '--project', project, '--from', 'dev', '--to', 'prod', '--commit']);
    const promoteCommit = /^commit=([0-9a-f]{40})$/m.exec(out)?.[1];
    expect(promoteCommit, out).toBeDefined();
    expect(out).toContain(`wrote ${project}/environments/prod.yaml`);
    const promoted = await g.push('promote (already committed by stk)');
    expect(promoted.sha).toBe(promoteCommit);
    await g.kustomizationReadyAt(promoted.sha);
    const prod = await g.env('prod');
    expect(prod.spec.release).toBe(v2);
    expect(prod.status?.currentRelease).toBe(v2);
    expect(await columnsOf(g.prodDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    await g.work.git.raw(['revert', '--no-edit', promoteCommit!]);
    const reverted = await g.push('revert (already committed by git)');
    await g.kustomizationReadyAt(reverted.sha);
    const back = await g.env('prod');
    expect(back.spec.release).toBe(prodBase);
    expect(back.status?.currentRelease).toBe(prodBase);
    expect(back.status?.history?.[0]).toMatchObject({ release: prodBase, action: 'rollback' });
    // A rollback is a pointer move: the column v2 added stays.
    expect(await columnsOf(g.prodDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);
  }, 360_000);

  it('pruning keeps a Release an environment still names until it is free, and deletes an unreferenced one', async () => {
    const g = await gitopsProject();
    const { project, namespace } = g;
    // dev served v1 and moved on to v2; a destructive release was refused in between, never served.
    const v1 = await g.devServingV1();
    const drop = await g.refusedDrop();
    const v2Ref = await g.source.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'add age');
    const v2 = await g.applyRef('dev', v2Ref);
    await g.kustomizationReadyAt((await g.push('dev: release v2')).sha);

    const dev = await g.env('dev');
    expect(dev.status?.currentRelease).toBe(v2);
    expect((dev.status?.history ?? []).map((h) => h.release)).toContain(v1.id);
    expect(dev.spec.release).not.toBe(drop.id);
    expect((dev.status?.history ?? []).map((h) => h.release)).not.toContain(drop.id);

    await g.work.git.rm([`${project}/releases/${v1.id}.yaml`, `${project}/releases/${drop.id}.yaml`]);
    const pruned = await g.push('remove two releases');
    await g.kustomizationReadyAt(pruned.sha);
    await eventually(async () => ((await client.find<Rel>(Kinds.Release, drop.id, namespace)) === undefined ? true : undefined), {
      timeoutMs: 60_000,
      what: `unreferenced Release ${drop.id} to be deleted`,
    });
    const kept = await eventually(
      async () => {
        const r = await g.release(v1.id);
        return r.metadata.deletionTimestamp ? r : undefined;
      },
      { timeoutMs: 60_000, what: `Release ${v1.id} to be marked for deletion by Flux's prune` },
    );
    expect(kept.metadata.finalizers).toContain(RELEASE_IN_USE_FINALIZER);
    expect(conditionOf(kept, 'Reconciling')).toMatchObject({ status: 'True', reason: 'InUse' });
    const inventory = ((await g.kustomization()).status as { inventory?: { entries?: Array<{ id: string }> } }).inventory?.entries ?? [];
    expect(inventory.map((e) => e.id).filter((id) => id.includes(v1.id) || id.includes(drop.id))).toEqual([]);
  }, 420_000);
});
