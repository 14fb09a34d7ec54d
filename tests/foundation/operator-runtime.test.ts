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
    // The counter goes up once the reconcile has returned, after the status write stk waited for.
    const metrics = await eventually(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${op.healthPort}/metrics`)).text();
        return /santokit_reconcile_total\{controller="project",result="success"\} [1-9]/.test(text) ? text : undefined;
      },
      { timeoutMs: 10_000, what: 'the project reconcile to be counted in /metrics' },
    );
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

  /*
   * An API server outage and the leader lease (README: lease 15 s, renew deadline 10 s, retry 2 s).
   * The intended behaviour has two sides, each tested with lease timings that put the outage
   * clearly on its side whatever the machine's speed:
   * - an outage shorter than the renew deadline: the leader keeps the lease, stays up and
   *   reconciles again once the API server is back;
   * - an outage longer than the renew deadline: the leader gives up the lease and exits 1, so
   *   that a fresh process (its Deployment restarts it) campaigns again; nothing reconciles
   *   without a lease.
   */
  const cluster = (cmd: string, component: string) =>
    runCommand('bash', [path.join(repoRoot, 'hack/cluster.sh'), cmd, component], { env: { ...process.env, SANTOKIT_STATE_DIR: process.env.SANTOKIT_STATE_DIR }, timeoutMs: 120_000 });

  it('an API server outage shorter than the renew deadline: the leader stays up and keeps reconciling', async () => {
    // Renew deadline 120 s: far longer than stopping and starting the API server takes.
    const op = await startOperator({ leaseName: uniqueName('lease'), args: ['--renew-deadline', '120', '--lease-duration', '150', '--retry-period', '1'] });
    started.push(op);
    await waitForOperatorReady(op);
    const before = uniqueName('before');
    expectExit(await stk(['project', 'create', before]));

    expectExit(await cluster('stop', 'apiserver'));
    try {
      // The leader saw the outage (a renewal failed) ...
      await eventually(async () => (op.records().some((r) => r.msg === 'leader election attempt failed') ? true : undefined), { timeoutMs: 30_000, what: 'a failed lease renewal' });
    } finally {
      expectExit(await cluster('start', 'apiserver'));
    }

    // ... and kept its lease: it is still running and reconciles what is created now.
    const after = uniqueName('after');
    expectExit(await stk(['project', 'create', after, '--timeout', '90']));
    const project = await client.get<Project & KubeObject>(Kinds.Project, after);
    expect(project.status?.namespace).toBe(`stk-${after}`);
    expect(op.child.exitCode).toBeNull();
    expect(op.logs()).not.toContain('lost leadership');
  }, 180_000);

  it('an API server outage longer than the renew deadline: the leader gives the lease up and exits 1', async () => {
    // Renew deadline 2 s: the outage below lasts until the operator has exited.
    const op = await startOperator({ leaseName: uniqueName('lease'), args: ['--renew-deadline', '2', '--lease-duration', '4', '--retry-period', '1', '--shutdown-timeout', '10'] });
    started.push(op);
    await waitForOperatorReady(op);

    expectExit(await cluster('stop', 'apiserver'));
    let code: number | null;
    try {
      code = await eventually(async () => (op.child.exitCode === null ? undefined : op.child.exitCode), { timeoutMs: 60_000, what: 'the operator to exit after losing its lease' });
      // Its last lines may still be in the pipe when it has exited: read them to the end.
      await op.exited;
    } finally {
      expectExit(await cluster('start', 'apiserver'));
    }
    expect(code).toBe(1);
    expect(op.logs()).toContain('lost leadership: could not renew the lease before the renew deadline');
    expect(op.logs()).toContain('leadership lost; exiting so a fresh process can campaign again');

    // A fresh process campaigns again and reconciles once the API server is back.
    const fresh = await startOperator({ leaseName: uniqueName('lease') });
    started.push(fresh);
    await waitForOperatorReady(fresh);
    const after = uniqueName('after');
    expectExit(await stk(['project', 'create', after, '--timeout', '90']));
    expect((await client.get<Project & KubeObject>(Kinds.Project, after)).status?.namespace).toBe(`stk-${after}`);
  }, 180_000);
});
