import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartDir as defaultChartDir, createNamespace, helm, helmBinary } from '../chart/helm.ts';
import { schemaV1 } from '../support/fixtures.ts';
import { eventually, expectExit, kubectl, runCommand, stk, uniqueName } from '../support/cluster.ts';
import { createDataplaneProject, type DataplaneProject } from '../dataplane/support.ts';
import { callAt, hostPidOf, isReady, kubectlJson, msBetween, node, nodeUp, podsOf, waitDeploymentReady, type NodeCluster, type PodJson } from './support.ts';

/**
 * Santokit as users run it: the image built here (hack/build-image.sh), installed with
 * `helm install` on a real kubelet (hack/node.sh: containerd, kube-proxy, a CNI bridge), under the
 * chart's restricted security context and RBAC. Postgres listens on the bridge address, so the
 * operator pods reach it as they would reach a database on a real network. Figures (start-up,
 * memory, failover, failed calls during an upgrade) are printed, not asserted on time.
 *
 * Run alone: npx vitest run --config tests/node/vitest.config.ts   (root; see docs/operations.md)
 */

// SANTOKIT_NODE_CHART_DIR: try a changed copy of the chart on the node (default charts/santokit).
const chartDir = process.env.SANTOKIT_NODE_CHART_DIR ?? defaultChartDir;
const release = 'stk';
const namespace = 'santokit-system';
const operatorSelector = `app.kubernetes.io/instance=${release},app.kubernetes.io/component=operator`;
const bridgeSelector = `app.kubernetes.io/instance=${release},app.kubernetes.io/component=bridge`;
const operatorDeployment = `${release}-santokit-operator`;
const bridgeDeployment = `${release}-santokit-bridge`;

const permissions = `tables:
  users:
    select: { roles: [reader] }
    insert: { roles: [reader] }
`;

type Lease = { spec: { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string } };

let cluster: NodeCluster;
let hostBefore = '';

function figure(label: string, value: string): void {
  console.log(`[node figures] ${label}: ${value}`);
}

async function helmInstall(): Promise<void> {
  const [repository, tag] = cluster.image.split(/:(?=[^:]+$)/);
  const t = Date.now();
  // As a user installs it: CRDs through the chart, the image from the node's store (never pulled).
  const res = await helm(['install', release, chartDir, '--namespace', namespace, '--set', `image.repository=${repository}`, '--set', `image.tag=${tag}`, '--set', 'image.pullPolicy=Never', '--wait', '--timeout', '5m']);
  expectExit(res);
  figure('helm install --wait', `${((Date.now() - t) / 1000).toFixed(1)} s`);
}

async function installed(): Promise<boolean> {
  return (await helm(['status', release, '--namespace', namespace])).code === 0;
}

async function lease(): Promise<Lease | undefined> {
  const res = await kubectl(['get', 'lease', 'santokit-operator', '-n', namespace, '-o', 'json']);
  return res.code === 0 ? (JSON.parse(res.stdout) as Lease) : undefined;
}

async function leaseHolder(): Promise<string | undefined> {
  return (await lease())?.spec.holderIdentity || undefined;
}

async function bridgeUrl(): Promise<string> {
  const svc = await kubectlJson<{ spec: { clusterIP: string; ports: Array<{ port: number }> } }>(['get', 'service', bridgeDeployment, '-n', namespace]);
  return `http://${svc.spec.clusterIP}:${svc.spec.ports[0]!.port}`;
}

/** A project with a dev environment on the node's Postgres, a release applied, a reader key. */
async function projectWithKey(prefix: string): Promise<{ p: DataplaneProject; apiKey: string; url: string }> {
  const p = await createDataplaneProject(prefix, ['dev']);
  await p.apply('dev', { 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions });
  const key = await stk(['apikey', 'create', '--project', p.project, '--env', 'dev', '--name', uniqueName('key'), '--roles', 'reader', '--json']);
  expectExit(key);
  const apiKey = (JSON.parse(key.stdout) as { apiKey: string }).apiKey;
  const url = await bridgeUrl();
  // Every data-plane replica must know the release and the key before a call may count.
  await eventually(async () => ((await callAt(url, apiKey, 'db/users/select', {})).status === 200 ? true : undefined), { timeoutMs: 60_000, what: `the data plane to serve ${p.project}` });
  return { p, apiKey, url };
}

/** The leader pod and the other ready replica, once both operator replicas are Ready. */
async function leaderAndOther(): Promise<{ leader: string; other: string; pod: PodJson }> {
  await waitDeploymentReady(namespace, operatorDeployment);
  const leader = await eventually(leaseHolder, { timeoutMs: 60_000, what: 'a leader' });
  const pods = (await podsOf(namespace, operatorSelector)).filter(isReady);
  const others = pods.filter((p) => p.metadata.name !== leader).map((p) => p.metadata.name);
  expect(others).toHaveLength(1);
  return { leader, other: others[0]!, pod: pods.find((p) => p.metadata.name === leader)! };
}

/**
 * The next holder of the Lease once `previous` lost it. The Deployment replaces the deleted pod at
 * once, so the surviving replica and the replacement both stand for the Lease: either may win, and
 * both are replicas of the operator Deployment.
 */
async function nextLeader(previous: string): Promise<string> {
  const next = await eventually(
    async () => {
      const h = await leaseHolder();
      return h !== undefined && h !== previous ? h : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 250, what: `the Lease to move away from ${previous}` },
  );
  const replicas = (await podsOf(namespace, operatorSelector)).map((p) => p.metadata.name);
  expect(replicas, `the new holder ${next} is a replica of ${operatorDeployment}`).toContain(next);
  return next;
}

/** The leader reconciles: a new project gets its namespace and Ready. */
async function expectReconciles(): Promise<void> {
  const name = uniqueName('nodefail');
  const t = Date.now();
  expectExit(await stk(['project', 'create', name]));
  await eventually(
    async () => {
      const res = await kubectl(['get', 'projects.santokit.io', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return res.stdout === 'True' ? true : undefined;
    },
    { timeoutMs: 60_000, what: `project ${name} to be reconciled by the new leader` },
  );
  figure('first reconcile after the failover (project Ready)', `${((Date.now() - t) / 1000).toFixed(1)} s`);
  expectExit(await kubectl(['get', 'namespace', `stk-${name}`]));
  expectExit(await kubectl(['delete', 'projects.santokit.io', name, '--wait=false']));
  await waitDeploymentReady(namespace, operatorDeployment);
}

describe('the chart on a real node', () => {
  beforeAll(async () => {
    // The host as it is before the node exists; the last test compares it after `down`.
    expectExit(await node('down'));
    const snap = await node('snapshot');
    expectExit(snap);
    hostBefore = snap.stdout;
    const t = Date.now();
    cluster = await nodeUp();
    figure('hack/node.sh up (binaries and images cached or built)', `${((Date.now() - t) / 1000).toFixed(1)} s`);
    for (const line of cluster.timings) figure('up', line.replace(/^\[[a-z-]+\] /, ''));
    helmBinary();
    // The restricted Pod Security Standard is enforced on the release namespace: a pod of the
    // chart that asked for more would be refused.
    await createNamespace(namespace, { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' });
    await helmInstall();
  });

  afterAll(async () => {
    // SANTOKIT_KEEP_NODE=1 keeps the node (and the release) up to look around; `hack/node.sh down` ends it.
    if (process.env.SANTOKIT_KEEP_NODE !== '1') expectExit(await node('down'));
  });

  it('both Deployments are Ready under the restricted security context and the chart RBAC; a leader holds the Lease', async () => {
    if (!(await installed())) await helmInstall();
    await waitDeploymentReady(namespace, operatorDeployment);
    await waitDeploymentReady(namespace, bridgeDeployment);
    const operators = (await podsOf(namespace, operatorSelector)).filter(isReady);
    const bridges = (await podsOf(namespace, bridgeSelector)).filter(isReady);
    expect(operators).toHaveLength(2);
    expect(bridges).toHaveLength(2);

    for (const pod of [...operators, ...bridges]) {
      expect(pod.spec.nodeName).toBe(cluster.nodeName);
      expect(pod.status.containerStatuses?.[0]?.restartCount).toBe(0);
      // The image runs as 1000:1000 on a read-only root file system, without a shell.
      const who = await kubectl(['exec', '-n', namespace, pod.metadata.name, '--', 'node', '-e', 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)']);
      expectExit(who);
      expect(who.stdout).toBe('1000:1000');
      const write = await kubectl(['exec', '-n', namespace, pod.metadata.name, '--', 'node', '-e', "require('fs').writeFileSync('/app/x', '')"]);
      expect(write.code).not.toBe(0);
      expect(write.stderr).toContain('EROFS');
      const shell = await kubectl(['exec', '-n', namespace, pod.metadata.name, '--', '/bin/sh', '-c', 'true']);
      expect(shell.code).not.toBe(0);
    }
    // The pods run as the chart's ServiceAccounts (their RBAC is what they have).
    const sa = await kubectlJson<{ items: Array<{ spec: { serviceAccountName: string } }> }>(['get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`]);
    expect(new Set(sa.items.map((i) => i.spec.serviceAccountName))).toEqual(new Set([`${release}-santokit-operator`, `${release}-santokit-bridge`]));

    const holder = await eventually(leaseHolder, { timeoutMs: 60_000, what: 'a leader to hold the Lease' });
    expect(operators.map((p) => p.metadata.name)).toContain(holder);

    // The data-plane Service answers from the host: /healthz 200, /call without a key 401.
    const url = await bridgeUrl();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await callAt(url, undefined, 'db/users/select')).status).toBe(401);

    // Start-up (no image pull: the image is in the node's store) and memory, per pod.
    for (const pod of [...operators, ...bridges]) {
      const ready = pod.status.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime;
      const started = pod.status.containerStatuses?.[0]?.state.running?.startedAt;
      figure(`start-up ${pod.metadata.name}`, `created→ready ${msBetween(pod.metadata.creationTimestamp, ready)} ms, container start→ready ${msBetween(started, ready)} ms (1 s resolution)`);
    }
    // The kubelet fills in a new container's stats at its next housekeeping (~10 s): read until
    // every pod of the release has a working set, then print it; a pod still without one says so.
    type Summary = { pods: Array<{ podRef: { name: string; namespace: string }; memory?: { workingSetBytes?: number } }> };
    const podNames = [...operators, ...bridges].map((p) => p.metadata.name);
    let stats: Summary = { pods: [] };
    const memoryOf = (name: string) => stats.pods.find((x) => x.podRef.namespace === namespace && x.podRef.name === name)?.memory?.workingSetBytes ?? 0;
    await eventually(
      async () => {
        const summary = await kubectl(['get', '--raw', `/api/v1/nodes/${cluster.nodeName}/proxy/stats/summary`]);
        expectExit(summary);
        stats = JSON.parse(summary.stdout) as Summary;
        return podNames.every((name) => memoryOf(name) > 0) ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 2_000, what: 'the kubelet to report every pod\'s memory' },
    ).catch(() => undefined);
    for (const name of podNames) {
      const bytes = memoryOf(name);
      figure(`memory ${name}`, bytes > 0 ? `${(bytes / 2 ** 20).toFixed(0)} MiB working set` : 'not reported by the kubelet within 60 s');
    }
  });

  it('the pipeline works from inside the cluster: stk apply → Release Ready, /call through the Service with an API key', async () => {
    if (!(await installed())) await helmInstall();
    const { p, apiKey, url } = await projectWithKey('nodepipe');
    try {
      const env = await kubectlJson<{ status: { currentRelease?: string; conditions?: Array<{ type: string; status: string }> } }>(['get', 'environments.santokit.io', 'dev', '-n', p.namespace]);
      expect(env.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      const rel = await kubectlJson<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(['get', 'releases.santokit.io', env.status.currentRelease!, '-n', p.namespace]);
      expect(rel.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');

      const inserted = await callAt(url, apiKey, 'db/users/insert', { data: { email: 'ann@example.com', name: 'Ann' } });
      expect(inserted.status, JSON.stringify(inserted.body)).toBe(200);
      const rows = await callAt(url, apiKey, 'db/users/select', { select: ['name'] });
      expect(rows.body.data).toEqual([{ name: 'Ann' }]);
      // The row is in the database the operator pods migrated, over the pod network.
      expect(await p.dbs.dev!.sql`SELECT name FROM users`).toEqual([{ name: 'Ann' }]);
      expect((await callAt(url, 'stk_wrong', 'db/users/select')).status).toBe(401);
    } finally {
      await p.drop();
    }
  });

  it('deleting the leader pod moves the Lease to another replica at once, and reconciles continue', async () => {
    if (!(await installed())) await helmInstall();
    const { leader, other } = await leaderAndOther();
    const held = (await lease())!.spec;
    const t = Date.now();
    // The kubelet stops the container with SIGTERM: the leader hands the Lease back on its way out.
    expectExit(await kubectl(['delete', 'pod', leader, '-n', namespace, '--wait=false']));
    const next = await nextLeader(leader);
    figure('leader failover, pod deleted (SIGTERM, Lease handed back)', `${((Date.now() - t) / 1000).toFixed(1)} s (to ${next === other ? 'the other replica' : 'the replacement pod'})`);
    // Handed back, not expired: the new holder acquired it before the old holder's last renewal
    // (as read before the delete; any later one only raises the bound) plus the Lease duration.
    const taken = (await lease())!.spec;
    expect(Date.parse(taken.acquireTime!)).toBeLessThan(Date.parse(held.renewTime!) + held.leaseDurationSeconds! * 1000);
    await expectReconciles();
  });

  it('SIGKILL of the leader process: another replica takes the Lease once it expires, and reconciles continue', async () => {
    if (!(await installed())) await helmInstall();
    const { leader, other, pod } = await leaderAndOther();
    const pid = await hostPidOf(cluster.containerdSock, pod.status.containerStatuses![0]!.containerID!);
    const t = Date.now();
    // No chance to hand the Lease back; the pod is force-deleted at once so the kubelet does not
    // restart the container in place (it would come back under the same identity).
    process.kill(pid, 'SIGKILL');
    const held = (await lease())!.spec;
    expectExit(await kubectl(['delete', 'pod', leader, '-n', namespace, '--grace-period=0', '--force', '--wait=false']));
    const next = await nextLeader(leader);
    figure('leader failover, process SIGKILLed (Lease expiry; leaseDurationSeconds 15)', `${((Date.now() - t) / 1000).toFixed(1)} s (to ${next === other ? 'the other replica' : 'the replacement pod'})`);
    // Taken over only once it expired: no earlier than the dead holder's last renewal plus the
    // Lease duration (read after the kill, so that renewal is the last).
    const taken = (await lease())!.spec;
    expect(Date.parse(taken.acquireTime!)).toBeGreaterThanOrEqual(Date.parse(held.renewTime!) + held.leaseDurationSeconds! * 1000);
    await expectReconciles();
  });

  it('helm upgrade with a changed value rolls every pod while /call keeps answering', async () => {
    if (!(await installed())) await helmInstall();
    const { p, apiKey, url } = await projectWithKey('nodeupg');
    try {
      const before = new Set([...(await podsOf(namespace, operatorSelector)), ...(await podsOf(namespace, bridgeSelector))].map((x) => x.metadata.name));
      let calls = 0;
      const failures: string[] = [];
      let stop = false;
      const loop = (async () => {
        while (!stop) {
          calls++;
          try {
            const r = await callAt(url, apiKey, 'db/users/select', {});
            if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
          } catch (err) {
            const cause = (err as { cause?: { code?: string; message?: string } }).cause;
            failures.push(`${String(err)}${cause ? ` (${cause.code ?? cause.message})` : ''}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const t = Date.now();
      // logLevel feeds both Deployments' arguments: a changed value rolls all four pods.
      const up = await helm(['upgrade', release, chartDir, '--namespace', namespace, '--reuse-values', '--set', 'logLevel=debug', '--set', `bridge.podAnnotations.rollout=${randomBytes(3).toString('hex')}`, '--wait', '--timeout', '5m']);
      await waitDeploymentReady(namespace, bridgeDeployment);
      await waitDeploymentReady(namespace, operatorDeployment);
      stop = true;
      await loop;
      expectExit(up);
      figure('helm upgrade --wait (all pods rolled)', `${((Date.now() - t) / 1000).toFixed(1)} s`);
      figure('calls during the upgrade', `${calls} calls, ${failures.length} failed${failures.length ? `: ${[...new Set(failures)].slice(0, 5).join(' | ')}` : ''}`);

      const after = [...(await podsOf(namespace, operatorSelector)), ...(await podsOf(namespace, bridgeSelector))].filter(isReady);
      expect(after).toHaveLength(4);
      for (const pod of after) expect(before.has(pod.metadata.name)).toBe(false);
      expect(calls).toBeGreaterThan(10);
      expect(failures).toEqual([]);
    } finally {
      await p.drop();
    }
  });

  it('helm uninstall removes the workloads and keeps the CRDs and the user data', async () => {
    if (!(await installed())) await helmInstall();
    const { p, apiKey, url } = await projectWithKey('nodeuni');
    try {
      expect((await callAt(url, apiKey, 'db/users/insert', { data: { email: 'kept@example.com', name: 'kept' } })).status).toBe(200);
      expectExit(await helm(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '3m']));

      await eventually(async () => ((await podsOf(namespace, `app.kubernetes.io/instance=${release}`)).length === 0 ? true : undefined), { timeoutMs: 90_000, what: 'the chart pods to go' });
      for (const kind of ['deployments', 'services', 'serviceaccounts', 'roles', 'rolebindings']) {
        const left = await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', kind, '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`]);
        expect(left.items.map((i) => i.metadata.name), kind).toEqual([]);
      }
      const clusterRoles = await kubectlJson<{ items: unknown[] }>(['get', 'clusterroles', '-l', `app.kubernetes.io/instance=${release}`]);
      expect(clusterRoles.items).toEqual([]);
      // CRDs (Helm never deletes them), the user's objects and the database stay.
      for (const crd of ['projects', 'environments', 'connections', 'releases', 'infrahosts']) expectExit(await kubectl(['get', 'crd', `${crd}.santokit.io`]));
      expectExit(await kubectl(['get', 'projects.santokit.io', p.project]));
      const env = await kubectlJson<{ status: { currentRelease?: string } }>(['get', 'environments.santokit.io', 'dev', '-n', p.namespace]);
      expect(env.status.currentRelease).toMatch(/^rel-/);
      expectExit(await kubectl(['get', 'releases.santokit.io', env.status.currentRelease!, '-n', p.namespace]));
      expect(await p.dbs.dev!.sql`SELECT name FROM users`).toEqual([{ name: 'kept' }]);
    } finally {
      await p.drop();
    }
  });

  it('hack/node.sh down leaves the host as it was before up', async () => {
    const down = await node('down');
    expectExit(down);
    const after = await node('snapshot');
    expectExit(after);
    expect(after.stdout.split('\n')).toEqual(hostBefore.split('\n'));
    // No process of the node survives (containerd's shims included).
    const ps = await nodeProcesses();
    expect(ps).toEqual([]);
  });
});

/** Processes still naming the node's state or runtime directories. */
async function nodeProcesses(): Promise<string[]> {
  const res = await runCommand('ps', ['-eo', 'pid=,args=']);
  return res.stdout.split('\n').filter((l) => /santokit-node|\.santokit\/node\b/.test(l) && !/vitest|ps -eo/.test(l));
}
