import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment, type KindInfo, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, deleteProjects, eventually, freePort, kubectl, repoRoot, startOperator, stk, uniqueName, waitForAccess, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { createNamespace, findObject, renderChart, serviceAccountKubeconfig, toYamlStream, type RenderedObject } from './helm.ts';
import { schemaV1, schemaDropName, columnsOf } from '../support/fixtures.ts';
import { largeSchema } from '../support/large-schema.ts';

/**
 * The chart's RBAC is enough, and only what is needed: its ServiceAccounts, ClusterRoles, Roles
 * and bindings are installed for real in a fresh release namespace; the operator and the data
 * plane run with tokens of those ServiceAccounts (what their pods would hold) and with the flags
 * the chart's Deployments pass; the release pipeline and POST /call work end to end, and
 * nothing is ever forbidden.
 */

const client = await adminClient();

const EventKind: KindInfo = { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };
const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

const permissions = `tables:
  users:
    select:
      - roles: [admin]
        columns: ["*"]
    insert:
      - roles: [admin]
`;

interface Container {
  args: string[];
}
type Deployment = RenderedObject & { spec: { template: { spec: { serviceAccountName: string; containers: Container[] } } } };

/** The container args of a rendered Deployment without the flags a local test process must choose itself. */
function argsWithout(deployment: Deployment, drop: string[]): string[] {
  const args = deployment.spec.template.spec.containers[0]!.args;
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (drop.includes(args[i]!)) i++;
    else out.push(args[i]!);
  }
  return out;
}

describe('chart RBAC', () => {
  const namespace = uniqueName('stk-chart');
  const release = uniqueName('rbac');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stk-chart-rbac-'));
  let objects: RenderedObject[];
  let operatorAccount: string;
  let bridgeAccount: string;
  let operator: OperatorProcess;
  let bridge: { child: ChildProcess; url: string; probeUrl: string; logs: () => string } | undefined;
  let repo: TestRepo;
  const projects: string[] = [];
  const dbs: TestDatabase[] = [];

  /** A project with the given environments, each with a database behind connection `main`, sealed with this release's certificate. */
  async function createProject(prefix: string, envs: string[]): Promise<{ project: string; db: Record<string, TestDatabase> }> {
    const project = uniqueName(prefix);
    projects.push(project);
    const created = await stk(['project', 'create', project]);
    expectExit(created);
    const db: Record<string, TestDatabase> = {};
    for (const e of envs) {
      const env = await stk(['env', 'create', '--project', project, e]);
      expectExit(env);
      db[e] = await createTestDatabase(`chart_${e}`);
      dbs.push(db[e]);
      const set = await stk(['connections', 'set', '--project', project, '--env', e, '--name', 'main', '--db-url', db[e].url, '--operator-namespace', namespace]);
      expectExit(set);
    }
    return { project, db };
  }

  /**
   * Log lines with a refusal, except those about namespaces of other test files' projects: those
   * exist before this release's operator has bound its ServiceAccounts there, so a first read in
   * them may be refused for a moment (the same happens once on an upgrade). The namespace is the
   * one the refusal names, else that of the reconciled object's key (`<namespace>/<name>`: a
   * probe failure logs only its reason). Nothing of this test's own namespaces, and nothing
   * cluster-wide, may be refused.
   */
  function forbiddenOfOurs(logs: string): string[] {
    const ours = new Set([namespace, ...projects.map((p) => `stk-${p}`)]);
    return logs
      .split('\n')
      .filter((l) => /forbidden/i.test(l))
      .filter((l) => {
        const where = /in the namespace \\"([^\\"]+)\\"/.exec(l)?.[1] ?? /"key":"([^"/]+)\//.exec(l)?.[1];
        return where === undefined || ours.has(where);
      });
  }

  beforeAll(async () => {
    await createNamespace(namespace);
    objects = await renderChart({ release, namespace });
    const installed = await kubectl(['apply', '--server-side', '--field-manager=santokit-chart-test', '-f', '-'], { input: toYamlStream(objects.filter((o) => rbacKinds.has(o.kind))) });
    expectExit(installed);

    const operatorDeployment = findObject(objects, 'Deployment', '-operator') as Deployment;
    const bridgeDeployment = findObject(objects, 'Deployment', '-bridge') as Deployment;
    operatorAccount = operatorDeployment.spec.template.spec.serviceAccountName;
    bridgeAccount = bridgeDeployment.spec.template.spec.serviceAccountName;
    // The bindings just written reach the API server's authorizer a moment later: wait until it
    // grants what each one gives (cluster-wide and in the release namespace), so that a refusal
    // in the logs below is the chart's, not the authorizer's cache catching up.
    const as = (account: string) => ['--as', `system:serviceaccount:${namespace}:${account}`];
    await waitForAccess(['list', 'projects.santokit.io', ...as(operatorAccount)]);
    await waitForAccess(['create', 'leases', '--namespace', namespace, ...as(operatorAccount)]);
    await waitForAccess(['list', 'environments.santokit.io', '--all-namespaces', ...as(bridgeAccount)]);

    // startOperator picks the address, port, identity and log level; everything else is the chart's.
    const operatorArgs = argsWithout(operatorDeployment, ['--bind-address', '--health-port', '--lease-name', '--identity', '--log-level']);
    const chartArgs = operatorDeployment.spec.template.spec.containers[0]!.args;
    const leaseName = chartArgs[chartArgs.indexOf('--lease-name') + 1]!;
    operator = await startOperator({ leaseName, kubeconfig: await serviceAccountKubeconfig(namespace, operatorAccount, tmp), args: operatorArgs });
    await waitForOperatorReady(operator);

    const port = await freePort();
    const probePort = await freePort();
    const bridgeArgs = argsWithout(bridgeDeployment, ['--bind-address', '--port', '--health-port', '--log-level']);
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist/operator/main.js'), ...bridgeArgs, '--bind-address', '127.0.0.1', '--port', String(port), '--health-port', String(probePort), '--log-level', 'debug'], {
      env: { ...process.env, KUBECONFIG: await serviceAccountKubeconfig(namespace, bridgeAccount, tmp) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    bridge = { child, url: `http://127.0.0.1:${port}`, probeUrl: `http://127.0.0.1:${probePort}`, logs: () => output };

    repo = await createTestRepo();
  });

  afterAll(async () => {
    bridge?.child.kill('SIGKILL');
    // While the operator runs: its finalizer drops each Connection's data-plane role.
    await deleteProjects(projects);
    await operator?.stop();
    for (const db of dbs) await db.drop();
    await kubectl(['delete', 'namespace', namespace, '--wait=false']);
    await kubectl(['delete', 'clusterrolebinding,clusterrole', '-l', `app.kubernetes.io/instance=${release}`, '--wait=false']);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the operator bootstraps and leads with only its ServiceAccount: Lease, sealing key, project ClusterRoles', async () => {
    expect(operator.records().some((r) => r.msg === 'bootstrap complete')).toBe(true);
    const lease = await eventually(
      async () => {
        const l = await client.find<KubeObject & { spec: { holderIdentity?: string } }>(Kinds.Lease, 'santokit-operator', namespace);
        return l?.spec.holderIdentity === operator.identity ? l : undefined;
      },
      { what: 'the operator to hold the lease' },
    );
    expect(lease.metadata.namespace).toBe(namespace);
    expect(await client.find(Kinds.Secret, 'santokit-sealing-key', namespace)).toBeDefined();
    expect(await client.find(Kinds.ConfigMap, 'santokit-sealing-cert', namespace)).toBeDefined();
    for (const name of ['santokit-project-admin', 'santokit-project-deployer', 'santokit-project-viewer']) {
      expect(await client.find(Kinds.ClusterRole, name), name).toBeDefined();
    }
    // Any authenticated user may read the sealing certificate (what stk seals with).
    const canRead = await kubectl(['auth', 'can-i', 'get', 'configmap/santokit-sealing-cert', '--namespace', namespace, '--as', 'someone', '--as-group', 'system:authenticated']);
    expect(canRead.stdout.trim()).toBe('yes');
    expect(forbiddenOfOurs(operator.logs())).toEqual([]);
  });

  it('the operator runs the release pipeline: apply, destructive change refused, promote', async () => {
    const { project, db } = await createProject('chartpipe', ['dev', 'prod']);
    const nsOf = `stk-${project}`;
    const env = (name: string) => client.get<Environment & KubeObject>(Kinds.Environment, name, nsOf);
    const tested = await stk(['connections', 'test', '--project', project, '--env', 'dev']);
    expectExit(tested);

    const v1 = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    const applied = await stk(['apply', '--project', project, '--env', 'dev', '--ref', v1, '--repo', repo.dir]);
    expectExit(applied);
    const releaseId = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(applied.stdout)?.[1];
    expect(releaseId).toBeDefined();
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id', 'name']);
    expect((await env('dev')).status?.currentRelease).toBe(releaseId);
    expect(await client.find(Kinds.ConfigMap, `santokit-permissions-${releaseId}`, nsOf)).toBeDefined();

    const drop = await repo.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name');
    const refused = await stk(['apply', '--project', project, '--env', 'dev', '--ref', drop, '--repo', repo.dir]);
    expectExit(refused, 2);
    expect(refused.stderr).toContain('DestructiveChange');
    expect(await columnsOf(db.dev!.sql, 'users')).toEqual(['email', 'id', 'name']);
    expect((await env('dev')).status?.currentRelease).toBe(releaseId);

    const schemaOnly = await stk(['apply', '--project', project, '--env', 'prod', '--ref', v1, '--repo', repo.dir, '--only', 'schema']);
    expectExit(schemaOnly);
    const promoted = await stk(['release', 'promote', '--project', project, '--from', 'dev', '--to', 'prod']);
    expectExit(promoted);
    expect((await env('prod')).status?.currentRelease).toBe(releaseId);
    expect(await columnsOf(db.prod!.sql, 'users')).toEqual(['email', 'id', 'name']);

    // Events were recorded (create + patch on events) and nothing was refused along the way.
    const events = await client.list<KubeObject & { involvedObject: { kind: string } }>(EventKind, { namespace: nsOf });
    expect(events.items.some((e) => e.involvedObject.kind === 'Environment')).toBe(true);
    expect(forbiddenOfOurs(operator.logs())).toEqual([]);
  }, 180_000);

  it('the data plane serves POST /call with only its ServiceAccount', async () => {
    const { project, db } = await createProject('chartcall', ['dev']);
    // Large enough to be stored chunked: the operator and the data plane read its ConfigMaps with their own rights.
    const ref = await repo.commit({ 'schema/app.yaml': schemaV1, ...largeSchema(110).files, 'config/permissions.yaml': permissions }, 'serve');
    const applied = await stk(['apply', '--project', project, '--env', 'dev', '--ref', ref, '--repo', repo.dir]);
    expectExit(applied);
    const releaseId = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(applied.stdout)![1]!;
    expect((await client.get<Release & KubeObject>(Kinds.Release, releaseId, `stk-${project}`)).spec.content?.chunks.length).toBeGreaterThan(0);
    const key = await stk(['apikey', 'create', '--project', project, '--env', 'dev', '--name', 'chart', '--roles', 'admin', '--json']);
    expectExit(key);
    const { apiKey } = JSON.parse(key.stdout) as { apiKey: string };

    const call = async (path: string, params: unknown) => {
      const res = await fetch(`${bridge!.url}/call`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-santokit-api-key': apiKey }, body: JSON.stringify({ path, params }) });
      return { status: res.status, body: (await res.json()) as { data?: unknown; error?: { code: string } } };
    };
    // The key and the release reach the data plane through its watches within seconds.
    const inserted = await eventually(
      async () => {
        const res = await call('db/users/insert', { data: { email: 'ann@example.com', name: 'Ann' } });
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 30_000, what: `the data plane to serve ${project}/dev (log:\n${bridge!.logs().slice(-2000)})` },
    );
    expect(inserted.body.data).toMatchObject({ email: 'ann@example.com', name: 'Ann' });
    const selected = await call('db/users/select', {});
    expect(selected.status).toBe(200);
    expect(selected.body.data).toEqual([expect.objectContaining({ email: 'ann@example.com', name: 'Ann' })]);
    expect(await db.dev!.sql`SELECT email FROM users`).toEqual([{ email: 'ann@example.com' }]);
    const ready = await fetch(`${bridge!.probeUrl}/readyz`);
    expect(ready.status, await ready.text()).toBe(200);
    expect(forbiddenOfOurs(bridge!.logs())).toEqual([]);
  }, 120_000);

  it('grants nothing beyond what the code needs; Secrets only in project namespaces (kubectl auth can-i --list)', async () => {
    const as = (account: string) => ['--as', `system:serviceaccount:${namespace}:${account}`];
    const can = async (account: string, ...args: string[]) => (await kubectl(['auth', 'can-i', ...args, ...as(account)])).stdout.trim();
    /** `kubectl auth can-i --list` in a namespace: resource → verbs (rules naming resources only by name are keyed `resource/name`). */
    const list = async (account: string, ns: string): Promise<Map<string, string[]>> => {
      const res = await kubectl(['auth', 'can-i', '--list', '--namespace', ns, ...as(account)]);
      expectExit(res);
      const rows = new Map<string, string[]>();
      for (const line of res.stdout.split('\n').slice(1)) {
        const m = /^(\S+)\s+\[[^\]]*\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s*$/.exec(line.trim());
        if (!m) continue;
        const names = m[2]!.trim();
        const key = names ? `${m[1]}/${names}` : m[1]!;
        rows.set(key, [...(rows.get(key) ?? []), ...m[3]!.split(' ').filter(Boolean)].sort());
      }
      return rows;
    };
    const project = uniqueName('chartcan');
    projects.push(project);
    expectExit(await stk(['project', 'create', project]));
    const projectNs = `stk-${project}`;
    await eventually(async () => ((await client.find(Kinds.RoleBinding, 'santokit-data-plane', projectNs)) && (await client.find(Kinds.RoleBinding, 'santokit-operator', projectNs)) ? true : undefined), {
      what: `the operator to bind the service accounts in ${projectNs}`,
    });
    // Written is not yet seen: the authorizer answers from its cache, which follows a moment later.
    await waitForAccess(['create', 'secrets', '--namespace', projectNs, ...as(operatorAccount)]);
    await waitForAccess(['list', 'secrets', '--namespace', projectNs, ...as(bridgeAccount)]);

    // The operator: Secrets by name and create/patch in project namespaces, never cluster-wide, never list.
    const opProject = await list(operatorAccount, projectNs);
    expect(opProject.get('secrets')).toEqual(['create', 'get', 'list', 'patch', 'watch']);
    // ConfigMaps: chunks of large Releases read (get, in project namespaces) and owned (patch), snapshots written (create, patch).
    expect(opProject.get('configmaps')).toEqual(['create', 'get', 'patch']);
    expect(await can(operatorAccount, 'get', 'configmaps', '--namespace', 'default')).toBe('no');
    expect(await can(operatorAccount, 'delete', 'configmaps', '--namespace', projectNs)).toBe('no');
    const opElsewhere = await list(operatorAccount, 'default');
    expect([...opElsewhere.keys()].filter((k) => k.startsWith('secrets'))).toEqual([]);
    expect(await can(operatorAccount, 'get', 'secrets', '--all-namespaces')).toBe('no');
    for (const verb of ['update', 'delete']) expect(await can(operatorAccount, verb, 'secrets', '--namespace', projectNs), verb).toBe('no');
    // In the release namespace: the sealing key by name (and the first-run create).
    expect(await can(operatorAccount, 'get', 'secret/santokit-sealing-key', '--namespace', namespace)).toBe('yes');
    expect(await can(operatorAccount, 'get', 'secret/other', '--namespace', namespace)).toBe('no');
    // It may write the three project ClusterRoles, no other; bind only the two per-project roles, only through its two RoleBindings.
    expect(await can(operatorAccount, 'patch', 'clusterrole/santokit-project-admin')).toBe('yes');
    expect(await can(operatorAccount, 'patch', 'clusterrole/cluster-admin')).toBe('no');
    expect(await can(operatorAccount, 'escalate', 'clusterrole/cluster-admin')).toBe('no');
    expect(await can(operatorAccount, 'bind', `clusterrole/${findObject(objects, 'ClusterRole', '-bridge-project').metadata.name}`)).toBe('yes');
    expect(await can(operatorAccount, 'bind', 'clusterrole/cluster-admin')).toBe('no');
    expect(await can(operatorAccount, 'bind', 'clusterrole/santokit-project-admin')).toBe('no');
    expect(await can(operatorAccount, 'create', 'clusterrolebindings')).toBe('no');
    expect(await can(operatorAccount, 'create', 'rolebindings', '--namespace', namespace)).toBe('no');
    expect(await can(operatorAccount, 'patch', 'rolebinding/santokit-data-plane', '--namespace', projectNs)).toBe('yes');
    expect(await can(operatorAccount, 'patch', 'rolebinding/other', '--namespace', projectNs)).toBe('no');
    // The Lease only in the release namespace, only by its name.
    expect(await can(operatorAccount, 'patch', 'lease/santokit-operator', '--namespace', namespace)).toBe('yes');
    expect(await can(operatorAccount, 'patch', 'lease/other', '--namespace', namespace)).toBe('no');
    expect(await can(operatorAccount, 'create', 'leases', '--namespace', 'default')).toBe('no');

    // The data plane: reads Santokit objects; Secrets (list, watch, patch) in project namespaces only; no sealing key.
    const dpProject = await list(bridgeAccount, projectNs);
    expect(dpProject.get('secrets')).toEqual(['list', 'patch', 'watch']);
    expect(dpProject.get('environments.santokit.io')).toEqual(['list', 'watch']);
    expect(dpProject.get('configmaps')).toEqual(['get']);
    expect(await can(bridgeAccount, 'get', 'configmaps', '--namespace', 'default')).toBe('no');
    expect(await can(bridgeAccount, 'list', 'configmaps', '--namespace', projectNs)).toBe('no');
    const dpElsewhere = await list(bridgeAccount, 'default');
    expect([...dpElsewhere.keys()].filter((k) => k.startsWith('secrets'))).toEqual([]);
    expect(await can(bridgeAccount, 'list', 'secrets', '--all-namespaces')).toBe('no');
    expect(await can(bridgeAccount, 'get', 'secret/santokit-sealing-key', '--namespace', namespace)).toBe('no');
    expect(await can(bridgeAccount, 'get', 'secrets', '--namespace', projectNs)).toBe('no');
    expect(await can(bridgeAccount, 'watch', 'releases.santokit.io', '--all-namespaces')).toBe('yes');
    expect(await can(bridgeAccount, 'get', 'releases.santokit.io', '--all-namespaces')).toBe('yes');
    for (const verb of ['create', 'patch', 'delete']) expect(await can(bridgeAccount, verb, 'environments.santokit.io', '--all-namespaces'), verb).toBe('no');
    expect(await can(bridgeAccount, 'delete', 'secrets', '--namespace', projectNs)).toBe('no');
  });
});
