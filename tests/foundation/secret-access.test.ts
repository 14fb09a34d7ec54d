import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Connection, type KindInfo } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, deleteProjects, eventually, kubectl, restrictedKubeconfig, startOperator, stk, uniqueName, waitForAccess, waitForOperatorReady, expectExit, type OperatorProcess } from '../support/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

/**
 * A deployer (santokit-project-deployer: writes Connections, may not read Secrets) cannot use a
 * Connection's secretRef to read a Secret of the namespace: the operator reads only Secrets that
 * carry the opt-in label santokit.io/connection-secret=true, and never echoes a Secret's content
 * in status, events or errors.
 */

const client = await adminClient();
const EventKind: KindInfo = { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('Connection secretRef: only opted-in Secrets, never echoed', () => {
  let operator: OperatorProcess;
  const dbs: TestDatabase[] = [];
  const projects: string[] = [];

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-secret-access') });
    await waitForOperatorReady(operator);
  });

  afterAll(async () => {
    // While the operator runs: its finalizer drops each Connection's data-plane role.
    await deleteProjects(projects);
    await operator?.stop();
    for (const db of dbs) await db.drop();
  });

  /** A project with env dev, the restricted user bound as deployer, and Secrets created by the admin. */
  async function deployerProject(secrets: Record<string, { labelled: boolean; data: Record<string, string> }>): Promise<{ project: string; namespace: string }> {
    const project = uniqueName('secacc');
    projects.push(project);
    const namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    expectExit(await stk(['env', 'create', '--project', project, 'dev']));
    expectExit(await kubectl(['create', 'rolebinding', 'restricted-deployer', '-n', namespace, '--clusterrole', 'santokit-project-deployer', '--user', 'restricted']));
    await waitForAccess(['create', 'connections.santokit.io', '-n', namespace], { kubeconfig: restrictedKubeconfig() });
    for (const [name, s] of Object.entries(secrets)) {
      await client.create(Kinds.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace, ...(s.labelled ? { labels: { 'santokit.io/connection-secret': 'true' } } : {}) },
        data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, b64(v)])),
      } as KubeObject);
    }
    return { project, namespace };
  }

  /** The Connection once the operator has answered its probe. */
  async function probed(namespace: string, name: string): Promise<Connection & KubeObject> {
    return eventually(
      async () => {
        const c = await client.find<Connection & KubeObject>(Kinds.Connection, name, namespace);
        return c?.status?.conditions?.some((x) => x.type === 'Reachable') ? c : undefined;
      },
      { timeoutMs: 30_000, what: `the operator to probe ${namespace}/${name}` },
    );
  }

  it('a deployer pointing secretRef at an unlabelled Secret learns nothing of it: same answer as a missing Secret, no content in status, events or CLI output', async () => {
    const leak = ['leaky-host', 'TOPSECRETPW', 'leakydb', 'leakuser'];
    const { project, namespace } = await deployerProject({ 'app-secrets': { labelled: false, data: { token: 'postgres://leakuser:TOPSECRETPW@leaky-host.example:5432/leakydb' } } });
    const restricted = { kubeconfig: restrictedKubeconfig() };
    // The deployer may not read the Secret itself …
    expectExit(await kubectl(['get', 'secret', 'app-secrets', '-n', namespace], restricted), 1);
    // … and a Connection naming it does not read it either.
    expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--secret-ref', 'app-secrets/token'], restricted));
    expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'missing', '--secret-ref', 'no-such-secret/token'], restricted));

    const pointed = await probed(namespace, 'dev-main');
    const missing = await probed(namespace, 'dev-missing');
    const reachable = (c: Connection) => c.status!.conditions!.find((x) => x.type === 'Reachable')!;
    expect(reachable(pointed)).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(reachable(pointed).message.replace('app-secrets', 'X')).toBe(reachable(missing).message.replace('no-such-secret', 'X'));
    expect(pointed.status?.target).toBeUndefined();

    const tested = await stk(['connections', 'test', '--project', project, '--env', 'dev', '--name', 'main'], restricted);
    expectExit(tested, 3);
    expect(tested.stderr).toContain('santokit.io/connection-secret');
    const listed = await stk(['connections', 'list', '--project', project, '--env', 'dev', '--json'], restricted);
    expectExit(listed);
    const events = await client.list<KubeObject & { message?: string }>(EventKind, { namespace });
    const seen = [JSON.stringify(pointed), tested.stdout, tested.stderr, listed.stdout, JSON.stringify(events.items.map((e) => e.message)), operator.logs()].join('\n');
    for (const part of leak) expect(seen, part).not.toContain(part);
  });

  it('a labelled Secret is used; a labelled value that is not a URL is refused without echoing it', async () => {
    const db = await createTestDatabase('secret_access');
    dbs.push(db);
    const { project, namespace } = await deployerProject({
      'db-url': { labelled: true, data: { url: db.url } },
      'not-a-url': { labelled: true, data: { url: 'SECRETVALUE-xyz:not-a-database-url' } },
    });
    const restricted = { kubeconfig: restrictedKubeconfig() };
    expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--secret-ref', 'db-url/url'], restricted));
    expectExit(await stk(['connections', 'test', '--project', project, '--env', 'dev', '--name', 'main'], restricted));

    expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'odd', '--secret-ref', 'not-a-url/url'], restricted));
    const odd = await probed(namespace, 'dev-odd');
    expect(odd.status!.conditions!.find((x) => x.type === 'Reachable')).toMatchObject({ status: 'False', reason: 'InvalidURL' });
    const events = await client.list<KubeObject & { message?: string }>(EventKind, { namespace });
    const seen = [JSON.stringify(odd), JSON.stringify(events.items.map((e) => e.message)), operator.logs()].join('\n');
    expect(seen).not.toContain('SECRETVALUE');
  });
});
