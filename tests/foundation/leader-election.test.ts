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
  /** The reconcile logs once it has returned, after the status write `stk project create` waits for: wait for the line. */
  const waitReconciledBy = (op: OperatorProcess, project: string) =>
    eventually(async () => (reconciledBy(op, project) ? true : undefined), { timeoutMs: 10_000, what: `${op.identity} to log its reconcile of project ${project}` });

  /*
   * A follower counts the lease as expired 15 s (the lease duration) after it last saw the record
   * change, and it looks every 2-2.4 s (retry period with jitter): the holder's last renewal is
   * seen up to 2.4 s late and the expiry noticed up to 2.4 s late, so the take-over comes at most
   * 15 + 2.4 + 2.4 = 19.8 s after the kill, plus request latency. The wait allows 30 s.
   */
  it('lets exactly one replica reconcile and fails over within the lease duration and two retry periods when it is killed', async () => {
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
    await waitReconciledBy(a, first);
    expect(reconciledBy(b, first)).toBe(false);

    a.child.kill('SIGKILL');
    await a.exited;
    await eventually(async () => ((await client.get<Lease>(Kinds.Lease, leaseName, 'santokit-system')).spec.holderIdentity === b.identity ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'replica b to take the lease',
    });

    const second = uniqueName('second');
    const res = await stk(['project', 'create', second]);
    expectExit(res);
    await waitReconciledBy(b, second);
  });
});
