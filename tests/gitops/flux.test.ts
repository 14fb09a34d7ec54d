import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
 */

const client = await adminClient();

type Rel = Release & KubeObject;
type Env = Environment & KubeObject;

describe('GitOps with Flux', () => {
  let operator: OperatorProcess;
  let gitServer: GitHttpServer;
  let gitops: BareRepo;
  /** the working clone stk --emit writes into */
  let work: TestRepo;
  /** the application repository releases are built from */
  let source: TestRepo;
  let devDb: TestDatabase;
  let prodDb: TestDatabase;
  let project: string;
  let namespace: string;
  let sourceName: string;
  let projectsKs: string;
  let projectKs: string;
  /** releases by role, filled as the flow goes */
  const rel: { v1?: string; drop?: string; fix?: string; prodBase?: string; v2?: string } = {};

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

  beforeAll(async () => {
    await startFlux();
    operator = await startOperator({ leaseName: uniqueName('lease-flux') });
    await waitForOperatorReady(operator);

    project = uniqueName('flux');
    namespace = `stk-${project}`;
    sourceName = `${project}-gitops`;
    projectsKs = `${project}-projects`;
    projectKs = project;
    gitServer = await startGitHttpServer();
    gitops = await gitServer.createBareRepo(project);
    work = await createTestRepo('stk-gitops');
    await work.git.addRemote('origin', gitops.dir);
    source = await createTestRepo('stk-source');
    devDb = await createTestDatabase('flux_dev');
    prodDb = await createTestDatabase('flux_prod');

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
    for (const obj of [repo, projects, own]) await applyFluxObject(obj);
  }, fluxStartTimeoutMs);

  afterAll(async () => {
    // Leave what Flux applied in place (as other suites leave their projects): orphan, then delete.
    for (const [kind, name] of [
      [FluxKinds.Kustomization, projectKs],
      [FluxKinds.Kustomization, projectsKs],
      [FluxKinds.GitRepository, sourceName],
    ] as const) {
      if (!name) continue;
      if (kind === FluxKinds.Kustomization) await client.patch(kind, name, 'flux-system', { spec: { deletionPolicy: 'Orphan', suspend: true } }).catch(() => undefined);
      await deleteFluxObject(kind, name).catch(() => undefined);
    }
    await operator?.stop();
    await gitServer?.close();
    await devDb?.drop();
    await prodDb?.drop();
    await stopFlux();
  }, 120_000);

  it('a pushed release is applied by Flux; the Kustomization is Ready only once the Release is', async () => {
    await emit(['project', 'create', project]);
    await emit(['env', 'create', '--project', project, 'dev']);
    await emit(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-'], devDb.url);
    const ref = await source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    rel.v1 = await applyRef('dev', ref);
    const written = (await work.git.raw(['ls-files', '--others', '--exclude-standard'])).trim().split('\n');
    expect(written.sort()).toEqual(
      [`${project}/connections/dev-main.yaml`, `${project}/environments/dev.yaml`, `${project}/releases/${rel.v1}.yaml`, `projects/${project}.yaml`].sort(),
    );
    const { sha, pushedAt } = await push('project, dev, release v1');

    // Sample both until the Release is Ready: the Kustomization must never be Ready at this
    // revision before the Release is.
    let early: string | undefined;
    const readyRelease = await eventually(
      async () => {
        const ks = await kustomization();
        const r = await client.find<Rel>(Kinds.Release, rel.v1!, namespace);
        const releaseReady = isReady(r);
        if (!releaseReady && isReady(ks) && revisionSha(ks.status?.lastAppliedRevision) === sha) early = JSON.stringify(r?.status);
        return releaseReady ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100, what: `Release ${rel.v1} Ready${diagnostics()}` },
    );
    console.log(`push→Release Ready: ${Date.now() - pushedAt} ms`);
    expect(early, 'Kustomization was Ready before its Release').toBeUndefined();

    const ks = await kustomizationReadyAt(sha);
    console.log(`push→Kustomization Ready: ${Date.now() - pushedAt} ms`);
    const ksReadyAt = Date.parse(conditionOf(ks, 'Ready')!.lastTransitionTime);
    const releaseReadyAt = Date.parse(conditionOf(readyRelease, 'Ready')!.lastTransitionTime);
    expect(ksReadyAt).toBeGreaterThanOrEqual(releaseReadyAt);
    expect(isReady(await getFluxObject(FluxKinds.Kustomization, projectsKs))).toBe(true);

    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
    const dev = await env('dev');
    expect(dev.status?.currentRelease).toBe(rel.v1);
    expect(dev.status?.history?.[0]).toMatchObject({ release: rel.v1, ref, action: 'apply' });
    expect(readyRelease.status?.servedBy).toEqual(['dev']);
  }, 240_000);

  it('a destructive change without force stalls the Release and fails the health check; a fixing commit recovers', async () => {
    const dropRef = await source.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name');
    rel.drop = await applyRef('dev', dropRef);
    const { sha } = await push('release: drop users.name');

    const stalled = await eventually(
      async () => {
        const r = await release(rel.drop!);
        return conditionOf(r, 'Stalled')?.status === 'True' ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `Release ${rel.drop} Stalled${diagnostics()}` },
    );
    expect(conditionOf(stalled, 'Stalled')?.reason).toBe('DestructiveChange');
    expect(conditionOf(stalled, 'Ready')?.status).toBe('False');
    const dev = await env('dev');
    expect(conditionOf(dev, 'Stalled')).toMatchObject({ status: 'True', reason: 'DestructiveChange' });
    expect(dev.status?.currentRelease).toBe(rel.v1);

    const failed = await eventually(
      async () => {
        const ks = await kustomization();
        const ready = conditionOf(ks, 'Ready');
        return revisionSha(ks.status?.lastAttemptedRevision) === sha && ready?.status === 'False' && ready.reason === 'HealthCheckFailed' ? ks : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `Kustomization ${projectKs} failing its health check at ${sha}${diagnostics()}` },
    );
    // The stalled objects count as Failed; Flux fails fast on the first it sees and names it with
    // that status (its message carries no condition reasons: those are on the objects, above).
    const message = conditionOf(failed, 'Ready')?.message ?? '';
    expect([`Environment/${namespace}/dev status: 'Failed'`, `Release/${namespace}/${rel.drop} status: 'Failed'`].some((m) => message.includes(m)), message).toBe(true);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);

    const fixRef = await source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'keep name');
    rel.fix = await applyRef('dev', fixRef);
    const fixed = await push('release: keep users.name');
    await kustomizationReadyAt(fixed.sha);
    const served = await release(rel.fix);
    expect(isReady(served)).toBe(true);
    expect(served.status?.servedBy).toEqual(['dev']);
    // No environment wants the refused release any more: it is merely available.
    const refused = await release(rel.drop);
    expect(conditionOf(refused, 'Stalled')?.status).not.toBe('True');
    expect(conditionOf(refused, 'Ready')).toMatchObject({ status: 'True', reason: 'Available' });
    const devAfter = await env('dev');
    expect(devAfter.status?.currentRelease).toBe(rel.fix);
    expect(conditionOf(devAfter, 'Stalled')?.status).not.toBe('True');
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['email', 'id', 'name']);
  }, 300_000);

  it('promotes dev to prod through Git; reverting the promote commit moves prod back without undoing DDL', async () => {
    // prod gets its own database and first serves dev's current ref.
    await emit(['env', 'create', '--project', project, 'prod']);
    await emit(['connections', 'set', '--project', project, '--env', 'prod', '--name', 'main', '--db-url', '-'], prodDb.url);
    const fixRef = (await release(rel.fix!)).spec.ref;
    rel.prodBase = await applyRef('prod', fixRef);
    const base = await push('prod: first release');
    await kustomizationReadyAt(base.sha);
    expect((await env('prod')).status?.currentRelease).toBe(rel.prodBase);
    expect(await columnsOf(prodDb.sql, 'users')).toEqual(['email', 'id', 'name']);

    const v2Ref = await source.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'add age');
    rel.v2 = await applyRef('dev', v2Ref);
    const v2 = await push('dev: release v2');
    await kustomizationReadyAt(v2.sha);
    expect((await env('dev')).status?.currentRelease).toBe(rel.v2);
    expect(await columnsOf(devDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    const out = await emit(['release', 'promote', '--project', project, '--from', 'dev', '--to', 'prod', '--commit']);
    const promoteCommit = /^commit=([0-9a-f]{40})$/m.exec(out)?.[1];
    expect(promoteCommit, out).toBeDefined();
    expect(out).toContain(`wrote ${project}/environments/prod.yaml`);
    const promoted = await push('promote (already committed by stk)');
    expect(promoted.sha).toBe(promoteCommit);
    await kustomizationReadyAt(promoted.sha);
    const prod = await env('prod');
    expect(prod.spec.release).toBe(rel.v2);
    expect(prod.status?.currentRelease).toBe(rel.v2);
    expect(await columnsOf(prodDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);

    await work.git.raw(['revert', '--no-edit', promoteCommit!]);
    const reverted = await push('revert (already committed by git)');
    await kustomizationReadyAt(reverted.sha);
    const back = await env('prod');
    expect(back.spec.release).toBe(rel.prodBase);
    expect(back.status?.currentRelease).toBe(rel.prodBase);
    expect(back.status?.history?.[0]).toMatchObject({ release: rel.prodBase, action: 'rollback' });
    // A rollback is a pointer move: the column v2 added stays.
    expect(await columnsOf(prodDb.sql, 'users')).toEqual(['age', 'email', 'id', 'name']);
  }, 360_000);

  it('pruning keeps a Release an environment still names until it is free, and deletes an unreferenced one', async () => {
    const dev = await env('dev');
    expect((dev.status?.history ?? []).map((h) => h.release)).toContain(rel.v1);
    expect(dev.status?.currentRelease).not.toBe(rel.v1);
    // rel.drop was refused and never served: nothing names it.
    const prod = await env('prod');
    for (const e of [dev, prod]) {
      expect(e.spec.release).not.toBe(rel.drop);
      expect((e.status?.history ?? []).map((h) => h.release)).not.toContain(rel.drop);
    }

    await work.git.rm([`${project}/releases/${rel.v1}.yaml`, `${project}/releases/${rel.drop}.yaml`]);
    const pruned = await push('remove two releases');
    await kustomizationReadyAt(pruned.sha);
    await eventually(async () => ((await client.find<Rel>(Kinds.Release, rel.drop!, namespace)) === undefined ? true : undefined), {
      timeoutMs: 60_000,
      what: `unreferenced Release ${rel.drop} to be deleted`,
    });
    const kept = await eventually(
      async () => {
        const r = await release(rel.v1!);
        return r.metadata.deletionTimestamp ? r : undefined;
      },
      { timeoutMs: 60_000, what: `Release ${rel.v1} to be marked for deletion by Flux's prune` },
    );
    expect(kept.metadata.finalizers).toContain(RELEASE_IN_USE_FINALIZER);
    expect(conditionOf(kept, 'Reconciling')).toMatchObject({ status: 'True', reason: 'InUse' });
    const inventory = ((await kustomization()).status as { inventory?: { entries?: Array<{ id: string }> } }).inventory?.entries ?? [];
    expect(inventory.map((e) => e.id).filter((id) => id.includes(rel.v1!) || id.includes(rel.drop!))).toEqual([]);
  }, 240_000);
});
