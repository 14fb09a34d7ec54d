import { afterEach, describe, expect, it } from 'vitest';
import { Kinds, type Project } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, runCommand, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, repoRoot, expectExit } from '../support/cluster.ts';
import path from 'node:path';

const client = await adminClient();

/** The operator process: config, probes, metrics, graceful shutdown, surviving an API server restart. */
describe('operator runtime', () => {
  const started: OperatorProcess[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((op) => op.stop('SIGKILL')));
  });

  it('exits non-zero naming every invalid config value', async () => {
    const res = await runCommand(process.execPath, [path.join(repoRoot, 'dist/operator/main.js'), '--health-port', 'not-a-port'], { env: { ...process.env, SANTOKIT_LEASE_DURATION: '0' } });
    expectExit(res, 1);
    expect(res.stderr).toContain('invalid configuration (2 problems)');
    expect(res.stderr).toContain('--health-port: must be an integer, got "not-a-port"');
    expect(res.stderr).toContain('SANTOKIT_LEASE_DURATION: must be >= 2');
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    const op = await startOperator({ leaseName: uniqueName('lease') });
    started.push(op);
    await waitForOperatorReady(op);
    expect((await fetch(`http://127.0.0.1:${op.healthPort}/healthz`)).status).toBe(200);
    const name = uniqueName('metrics');
    expectExit(await stk(['project', 'create', name]));
    const metrics = await (await fetch(`http://127.0.0.1:${op.healthPort}/metrics`)).text();
    expect(metrics).toMatch(/santokit_reconcile_total\{controller="project",result="success"\} [1-9]/);
    expect(metrics).toContain('santokit_reconcile_duration_seconds_bucket');
    expect(metrics).toContain('santokit_workqueue_depth');
    expect(metrics).toMatch(/^santokit_leader 1$/m);
  });

  it('shuts down gracefully on SIGTERM and hands the lease back', async () => {
    const leaseName = uniqueName('lease');
    const op = await startOperator({ leaseName });
    await waitForOperatorReady(op);
    await eventually(async () => ((await client.find<KubeObject & { spec: { holderIdentity?: string } }>(Kinds.Lease, leaseName, 'santokit-system'))?.spec.holderIdentity === op.identity ? true : undefined), {
      what: 'the lease to name the operator',
    });
    expect(await op.stop('SIGTERM')).toBe(0);
    const lease = await client.get<KubeObject & { spec: { holderIdentity?: string } }>(Kinds.Lease, leaseName, 'santokit-system');
    expect(lease.spec.holderIdentity ?? '').toBe('');
    expect(op.logs()).toContain('released the leader lease');
  });

  it('keeps reconciling across an API server restart', async () => {
    const op = await startOperator({ leaseName: uniqueName('lease') });
    started.push(op);
    await waitForOperatorReady(op);
    const before = uniqueName('before');
    expectExit(await stk(['project', 'create', before]));

    const cluster = (cmd: string, component: string) => runCommand('bash', [path.join(repoRoot, 'hack/cluster.sh'), cmd, component], { env: { ...process.env, SANTOKIT_STATE_DIR: process.env.SANTOKIT_STATE_DIR }, timeoutMs: 120_000 });
    const stopped = await cluster('stop', 'apiserver');
    expectExit(stopped);
    const started2 = await cluster('start', 'apiserver');
    expectExit(started2);

    const after = uniqueName('after');
    const res = await stk(['project', 'create', after, '--timeout', '90']);
    expectExit(res);
    const project = await client.get<Project & KubeObject>(Kinds.Project, after);
    expect(project.status?.namespace).toBe(`stk-${after}`);
    expect(op.child.exitCode).toBeNull();
  }, 180_000);
});
