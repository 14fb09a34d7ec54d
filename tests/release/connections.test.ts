import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Connection } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, env, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';

const client = await adminClient();

/** Connections: the URL sealed client-side, never shown again; the operator probes and names what failed. */
describe('stk connections', { timeout: 180_000 }, () => {
  let operator: OperatorProcess;
  const adminUrl = () => env('SANTOKIT_PG_ADMIN_URL');
  let project: string;
  const password = `pw-${uniqueName('secret')}`;
  const role = uniqueName('app').replace(/-/g, '_');
  let appUrl: string;

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-connections'), args: ['--probe-interval', '300'] });
    await waitForOperatorReady(operator);
    project = uniqueName('conn');
    expectExit(await stk(['project', 'create', project]));
    expectExit(await stk(['env', 'create', '--project', project, 'dev']));
    const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await admin.end();
    const u = new URL(adminUrl());
    u.username = role;
    u.password = password;
    appUrl = u.toString();
  });
  afterAll(async () => {
    await operator.stop();
  });

  const target = () => ['--project', project, '--env', 'dev'];

  it('seals the URL: the resource, the CLI output and the operator logs never carry it', async () => {
    // An environment of its own: the list below shows exactly this case's connection, whatever ran before.
    const env = uniqueName('sealed').replace(/-/g, '');
    expectExit(await stk(['env', 'create', '--project', project, env]));
    const own = ['--project', project, '--env', env];
    const set = await stk(['connections', 'set', ...own, '--name', 'main', '--engine', 'postgres', '--db-url', appUrl]);
    expectExit(set);
    const obj = await client.get<Connection & KubeObject>(Kinds.Connection, `${env}-main`, `stk-${project}`);
    expect(obj.spec.sealedUrl?.ciphertext).toBeTruthy();
    const yaml = await kubectl(['get', 'connection', `${env}-main`, '-n', `stk-${project}`, '-o', 'yaml']);
    const test = await stk(['connections', 'test', ...own, '--name', 'main']);
    expectExit(test);
    expect(test.stdout).toMatch(/connection main is reachable: connected and authenticated to 127\.0\.0\.1:\d+\/postgres/);
    const list = await stk(['connections', 'list', ...own]);
    expect(list.stdout).toMatch(/^NAME\s+ENGINE\s+TARGET\s+REACHABLE\s+REASON\nmain\s+postgres\s+127\.0\.0\.1:\d+\/postgres\s+True\s+Reachable\n$/);
    for (const text of [set.stdout, set.stderr, yaml.stdout, test.stdout, list.stdout, operator.logs()]) expect(text).not.toContain(password);
  });

  it('names the failure without printing the URL: auth failed, database missing, refused', async () => {
    const bad = new URL(appUrl);
    bad.password = 'wrong-password-123';
    const cases: Array<[string, string]> = [
      [bad.toString(), 'AuthenticationFailed'],
      [Object.assign(new URL(appUrl), { pathname: '/no_such_db' }).toString(), 'DatabaseNotFound'],
      [Object.assign(new URL(appUrl), { port: '1' }).toString(), 'ConnectionRefused'],
    ];
    for (const [url, reason] of cases) {
      const name = uniqueName('c').replace(/-/g, '');
      expectExit(await stk(['connections', 'set', ...target(), '--name', name, '--db-url', url]));
      const test = await stk(['connections', 'test', ...target(), '--name', name]);
      expectExit(test, 3);
      expect(test.stderr).toContain(reason);
      expect(test.stderr).not.toContain('wrong-password-123');
      expect(test.stderr).not.toContain(password);
      const obj = await client.get<Connection & KubeObject>(Kinds.Connection, `dev-${name}`, `stk-${project}`);
      expect(obj.status?.conditions?.find((c) => c.type === 'Reachable')).toMatchObject({ status: 'False', reason });
    }
  });

  it('rotates the sealed value, and a sealed value copied to another object does not open', async () => {
    const name = uniqueName('r').replace(/-/g, '');
    const bad = Object.assign(new URL(appUrl), { password: 'nope-nope-nope' }).toString();
    expectExit(await stk(['connections', 'set', ...target(), '--name', name, '--db-url', bad]));
    expectExit(await stk(['connections', 'test', ...target(), '--name', name]), 3);
    const rotate = await stk(['connections', 'rotate', ...target(), '--name', name, '--db-url', '-'], { input: appUrl });
    expectExit(rotate);
    expectExit(await stk(['connections', 'test', ...target(), '--name', name]));

    const original = await client.get<Connection & KubeObject>(Kinds.Connection, `dev-${name}`, `stk-${project}`);
    const copy = uniqueName('copy').replace(/-/g, '');
    const replay = { apiVersion: 'santokit.io/v1alpha1', kind: 'Connection', metadata: { name: `dev-${copy}`, namespace: `stk-${project}` }, spec: { ...original.spec, name: copy } };
    expectExit(await kubectl(['create', '-f', '-'], { input: JSON.stringify(replay) }));
    const test = await stk(['connections', 'test', ...target(), '--name', copy]);
    expectExit(test, 3);
    expect(test.stderr).toContain('SealedValueInvalid');
  });

  it('uses a Secret reference instead of a sealed value', async () => {
    const secret = uniqueName('dburl');
    expectExit(await kubectl(['create', 'secret', 'generic', secret, '-n', `stk-${project}`, '--from-literal', `url=${appUrl}`]));
    // Only a Secret that opts in may back a Connection (tests/foundation/secret-access.test.ts).
    expectExit(await kubectl(['label', 'secret', secret, '-n', `stk-${project}`, 'santokit.io/connection-secret=true']));
    const name = uniqueName('s').replace(/-/g, '');
    expectExit(await stk(['connections', 'set', ...target(), '--name', name, '--secret-ref', `${secret}/url`]));
    const test = await stk(['connections', 'test', ...target(), '--name', name, '--json']);
    expectExit(test);
    expect(JSON.parse(test.stdout)).toMatchObject({ name, reachable: true, reason: 'Reachable' });
  });
});
