import { afterEach, describe, expect, it } from 'vitest';
import { Kinds } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';

const client = await adminClient();

type Lease = KubeObject & { spec: { holderIdentity?: string } };

/** Two replicas: exactly one reconciles; when it dies, the other takes over within the lease duration. */
describe('leader election', () => {
  const started: OperatorProcess[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((op) => op.stop('SIGKILL')));
  });

  const reconciledBy = (op: OperatorProcess, project: string) => op.records().some((r) => r.controller === 'project' && r.key === project);
  /** The replica's log shows it reconciled the project (the line is read from its stdout, which can trail the status `stk` waited for). */
  const awaitReconciledBy = (op: OperatorProcess, project: string) =>
    eventually(async () => (reconciledBy(op, project) ? true : undefined), { timeoutMs: 10_000, intervalMs: 50, what: `${op.identity} to log a reconcile of project ${project}` });

  it('lets exactly one replica reconcile and fails over within 20 s when it is killed', async () => {
    const leaseName = uniqueName('lease');
    const a = await startOperator({ leaseName, identity: uniqueName('replica-a') });
    started.push(a);
    await waitForOperatorReady(a);
    const b = await startOperator({ leaseName, identity: uniqueName('replica-b') });
    started.push(b);
    await waitForOperatorReady(b);

    const lease = await client.get<Lease>(Kinds.Lease, leaseName, 'santokit-system');
    expect(lease.spec.holderIdentity).toBe(a.identity);

    const first = uniqueName('first');
    expectExit(await stk(['project', 'create', first]));
    await awaitReconciledBy(a, first);
    expect(reconciledBy(b, first)).toBe(false);

    a.child.kill('SIGKILL');
    await a.exited;
    await eventually(async () => ((await client.get<Lease>(Kinds.Lease, leaseName, 'santokit-system')).spec.holderIdentity === b.identity ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 250,
      what: 'replica b to take the lease',
    });

    const second = uniqueName('second');
    const res = await stk(['project', 'create', second]);
    expectExit(res);
    await awaitReconciledBy(b, second);
  });
});
