import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Connection } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, repoRoot, runCommand, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

/**
 * Rotating the sealing key: a new pair becomes current, values sealed before keep opening with
 * the retired key (a running operator picks the new key up without a restart), the retired key
 * cannot be dropped while a Connection still needs it, and nothing is unreachable at any point.
 */

const client = await adminClient();

describe('sealing key rotation', () => {
  // Its own operator namespace: the shared one's key stays as other tests left it.
  const operatorNamespace = uniqueName('stk-sealing');
  const project = uniqueName('rotate');
  const namespace = `stk-${project}`;
  const target = ['--project', project, '--env', 'dev'];
  const sealing = [...target, '--operator-namespace', operatorNamespace];
  let operator: OperatorProcess;
  let first: TestDatabase;
  let second: TestDatabase;

  const sealingKey = (action: string) =>
    runCommand(process.execPath, [path.join(repoRoot, 'dist/operator/main.js'), 'sealing-key', action, '--namespace', operatorNamespace], { timeoutMs: 60_000 });
  const secretKeys = async () => Object.keys((await client.get<KubeObject & { data: Record<string, string> }>(Kinds.Secret, 'santokit-sealing-key', operatorNamespace)).data).sort();
  const keyIdOf = async (name: string) => (await client.get<Connection & KubeObject>(Kinds.Connection, `dev-${name}`, namespace)).spec.sealedUrl?.keyId;
  const reachable = async (name: string) => {
    const res = await stk(['connections', 'test', ...target, '--name', name]);
    expectExit(res);
    expect(res.stdout).toContain(`connection ${name} is reachable`);
    return res;
  };

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-sealing'), args: ['--namespace', operatorNamespace, '--probe-interval', '300'] });
    await waitForOperatorReady(operator);
    [first, second] = await Promise.all([createTestDatabase('rot_a'), createTestDatabase('rot_b')]);
    expectExit(await stk(['project', 'create', project]));
    expectExit(await stk(['env', 'create', '--project', project, 'dev']));
  });
  afterAll(async () => {
    await operator?.stop();
    await Promise.all([first?.drop(), second?.drop()]);
  });

  it('rotates, keeps old values open, refuses to drop a key still in use, then drops it once every value is sealed again', async () => {
    expectExit(await stk(['connections', 'set', ...sealing, '--name', 'main', '--db-url', '-'], { input: first.url }));
    await reachable('main');
    const oldKey = await keyIdOf('main');
    expect(await secretKeys()).toEqual(['tls.crt', 'tls.key']);

    const rotated = await sealingKey('rotate');
    expectExit(rotated);
    expect(rotated.stdout).toContain(`previous ${oldKey} retired`);
    expect(rotated.stdout).toContain(`1 connection(s) to seal again with \`stk connections rotate\`: ${namespace}/dev-main`);
    expect(await secretKeys()).toEqual([`retired-${oldKey}.key`, 'tls.crt', 'tls.key']);

    // The value sealed before still opens; one sealed now (for the new key) opens in the same
    // running operator, which reads the key it has not seen yet.
    await reachable('main');
    expectExit(await stk(['connections', 'set', ...sealing, '--name', 'analytics', '--db-url', '-'], { input: second.url }));
    const newKey = await keyIdOf('analytics');
    expect(newKey).not.toBe(oldKey);
    await reachable('analytics');

    // Dropping the retired key now would cut `main` off: refused, nothing changed.
    const refused = await sealingKey('drop-retired');
    expectExit(refused, 2);
    expect(refused.stderr).toContain(`${namespace}/dev-main (key ${oldKey})`);
    expect(await secretKeys()).toEqual([`retired-${oldKey}.key`, 'tls.crt', 'tls.key']);

    expectExit(await stk(['connections', 'rotate', ...sealing, '--name', 'main', '--db-url', '-'], { input: first.url }));
    expect(await keyIdOf('main')).toBe(newKey);
    const dropped = await sealingKey('drop-retired');
    expectExit(dropped);
    expect(dropped.stdout).toContain(`dropped retired key(s) ${oldKey}`);
    expect(await secretKeys()).toEqual(['tls.crt', 'tls.key']);
    await reachable('main');
    await reachable('analytics');

    // No secret in any output: the test databases' URLs carry a password (the local Postgres
    // requires one over TCP), so its absence is checked, never skipped.
    const passwords = [first.url, second.url].map((u) => decodeURIComponent(new URL(u).password));
    for (const p of passwords) expect(p.length, 'a test database URL without a password proves nothing here').toBeGreaterThanOrEqual(8);
    for (const text of [rotated.stdout, rotated.stderr, refused.stderr, dropped.stdout, operator.logs()]) {
      for (const p of passwords) expect(text).not.toContain(p);
      for (const url of [first.url, second.url]) expect(text).not.toContain(url);
      expect(text).not.toContain('PRIVATE KEY');
    }
  });
});
