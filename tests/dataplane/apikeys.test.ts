import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, kubectl, stk, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { call, createApiKey, createDataplaneProject, dataOf, expectError, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type BridgeProcess, type DataplaneProject, notesApp } from './support.ts';

/** Flow 02: API keys created, listed, used, rotated and revoked as a user would, enforced by the data plane. */

const client = await adminClient();

const files = notesApp({ select: ['reader', 'admin'], insert: ['admin'] });

interface ListedKey {
  keyId: string;
  name: string;
  env: string;
  roles: string[];
  status: string;
  createdAt: string;
  lastUsedAt: string | null;
}

describe('stk apikey and the data plane', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  const outputs: string[] = [];
  const list = async (): Promise<ListedKey[]> => {
    const res = await stk(['apikey', 'list', '--project', p.project, '--json']);
    expectExit(res);
    return JSON.parse(res.stdout) as ListedKey[];
  };

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-keys');
    bridge = await startBridge();
    p = await createDataplaneProject('dpkeys', ['dev', 'prod']);
    await p.apply('dev', files);
    await waitBridgeReady(bridge);
    // Ready says nothing of this project's namespace (created after the bridge started): wait until
    // dev is served (release loaded, the data-plane credential delivered), as every test assumes.
    const probe = await createApiKey(p.project, 'dev', ['reader'], 'probe', bridge);
    outputs.push(probe.apiKey);
    await waitServable(bridge, probe.apiKey, 'db/notes/select');
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  it('create prints keyId and apiKey once; only a salted hash is stored, in a Secret bound to the env', async () => {
    const res = await stk(['apikey', 'create', '--project', p.project, '--env', 'dev', '--name', 'web', '--roles', 'reader,admin']);
    expectExit(res);
    const keyId = /^keyId=(ak[0-9a-f]{16})$/m.exec(res.stdout)?.[1];
    const apiKey = /^apiKey=(stk_\S+)$/m.exec(res.stdout)?.[1];
    expect(keyId).toBeDefined();
    expect(apiKey?.startsWith(`stk_${keyId}_`)).toBe(true);
    expect(res.stderr).toContain('shown only this once');
    outputs.push(apiKey!);

    const secret = await client.get<KubeObject & { data: Record<string, string> }>(Kinds.Secret, `santokit-apikey-${keyId}`, p.namespace);
    expect(secret.metadata.labels).toMatchObject({ 'santokit.io/api-key': 'true', 'santokit.io/project': p.project, 'santokit.io/environment': 'dev' });
    const decoded = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    expect(decoded).toMatchObject({ keyId, name: 'web', roles: 'reader,admin', status: 'active', hash: expect.stringMatching(/^scrypt\$/) });
    const yaml = await kubectl(['get', 'secrets', '-n', p.namespace, '-o', 'yaml']);
    const secretPart = apiKey!.slice(`stk_${keyId}_`.length);
    for (const text of [yaml.stdout, JSON.stringify(decoded), JSON.stringify(await list())]) {
      expect(text).not.toContain(secretPart);
      expect(text).not.toContain(Buffer.from(apiKey!).toString('base64'));
    }

    // Using it: 200, and list shows it active with a lastUsedAt.
    expect((await list()).find((k) => k.keyId === keyId)).toMatchObject({ status: 'active', lastUsedAt: null, roles: ['reader', 'admin'], env: 'dev', name: 'web' });
    // The key reaches the data plane through its Secret watch: until then it is unknown there (401).
    const first = await eventually(async () => {
      const r = await call(bridge, apiKey, 'db/notes/select');
      return r.status === 401 ? undefined : r;
    }, { what: `the bridge to know key ${keyId}`, timeoutMs: 10_000 });
    expect(dataOf(first)).toEqual([]);
    const used = await eventually(async () => (await list()).find((k) => k.keyId === keyId && k.lastUsedAt !== null), { what: 'lastUsedAt to be recorded', timeoutMs: 10_000 });
    expect(Date.parse(used.lastUsedAt!)).toBeGreaterThan(Date.now() - 60_000);
    const table = await stk(['apikey', 'list', '--project', p.project]);
    expect(table.stdout).toMatch(/^KEY ID\s+NAME\s+ENV\s+ROLES\s+STATUS\s+CREATED\s+LAST USED$/m);
    expect(table.stdout).toMatch(new RegExp(`^${keyId}\\s+web\\s+dev\\s+reader,admin\\s+active\\s+\\S+\\s+\\d{4}-`, 'm'));
  });

  it('no key is 401; a malformed, unknown or wrong key is 401 too', async () => {
    expectError(await call(bridge, undefined, 'db/notes/select'), 401, 'MissingCredential');
    expectError(await call(bridge, 'not-a-key', 'db/notes/select'), 401, 'InvalidApiKey');
    expectError(await call(bridge, `stk_ak0000000000000000_${'A'.repeat(43)}`, 'db/notes/select'), 401, 'InvalidApiKey');
    const real = await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    expectError(await call(bridge, `stk_${real.keyId}_${'B'.repeat(43)}`, 'db/notes/select'), 401, 'InvalidApiKey');
    expect((await call(bridge, real.apiKey, 'db/notes/select')).status).toBe(200);
  });

  it('a dev key with prod hints is 403; hints that agree with the key are fine', async () => {
    const dev = await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    outputs.push(dev.apiKey);
    expectError(await call(bridge, dev.apiKey, 'db/notes/select', {}, { 'x-santokit-env': 'prod' }), 403, 'HintMismatch');
    expectError(await call(bridge, dev.apiKey, 'db/notes/select', {}, { 'x-santokit-project': 'someone-else' }), 403, 'HintMismatch');
    expectError(await call(bridge, dev.apiKey, 'db/notes/select', {}, { 'x-santokit-project': p.project, 'x-santokit-env': 'prod' }), 403, 'HintMismatch');
    expect((await call(bridge, dev.apiKey, 'db/notes/select', {}, { 'x-santokit-project': p.project, 'x-santokit-env': 'dev' })).status).toBe(200);
    // a prod key serves prod: prod has no release yet
    const prod = await createApiKey(p.project, 'prod', ['reader'], undefined, bridge);
    expectError(await call(bridge, prod.apiKey, 'db/notes/select', {}, { 'x-santokit-env': 'prod' }), 404, 'NoCurrentRelease');
  });

  it('rotation: several active keys of one env work side by side; revoking one is 401 within 5 s and leaves the other', async () => {
    const oldKey = await createApiKey(p.project, 'dev', ['admin'], 'rotating-old', bridge);
    const newKey = await createApiKey(p.project, 'dev', ['admin'], 'rotating-new', bridge);
    outputs.push(oldKey.apiKey, newKey.apiKey);
    dataOf(await call(bridge, oldKey.apiKey, 'db/notes/insert', { data: { body: 'from old' } }));
    dataOf(await call(bridge, newKey.apiKey, 'db/notes/insert', { data: { body: 'from new' } }));

    const revoked = await stk(['apikey', 'revoke', '--project', p.project, '--key-id', oldKey.keyId]);
    expectExit(revoked);
    const started = Date.now();
    await eventually(async () => ((await call(bridge, oldKey.apiKey, 'db/notes/select')).status === 401 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100, what: 'the revoked key to be refused' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expectError(await call(bridge, oldKey.apiKey, 'db/notes/select'), 401, 'InvalidApiKey');
    expect((await call(bridge, newKey.apiKey, 'db/notes/select')).status).toBe(200);

    expect((await list()).find((k) => k.keyId === oldKey.keyId)).toMatchObject({ status: 'revoked' });
    const again = await stk(['apikey', 'revoke', '--project', p.project, '--key-id', oldKey.keyId]);
    expectExit(again);
    expect(again.stdout).toContain('already revoked');
  });

  it('revoke --env: refuses (not found) a key of another environment; revoking deletes the hash, so a status patch cannot revive the key', async () => {
    const key = await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    outputs.push(key.apiKey);
    expect((await call(bridge, key.apiKey, 'db/notes/select')).status).toBe(200);
    const wrongEnv = await stk(['apikey', 'revoke', '--project', p.project, '--env', 'prod', '--key-id', key.keyId]);
    expectExit(wrongEnv, 2);
    expect(wrongEnv.stderr).toContain(`API key ${key.keyId} does not exist in ${p.project}/prod`);
    expect((await list()).find((k) => k.keyId === key.keyId)).toMatchObject({ status: 'active' });

    const revoked = await stk(['apikey', 'revoke', '--project', p.project, '--env', 'dev', '--key-id', key.keyId]);
    expectExit(revoked);
    const secretName = `santokit-apikey-${key.keyId}`;
    const stored = await client.get<KubeObject & { data?: Record<string, string> }>(Kinds.Secret, secretName, p.namespace);
    expect(stored.data?.hash).toBeUndefined();
    expect(Buffer.from(stored.data?.status ?? '', 'base64').toString()).toBe('revoked');
    await eventually(async () => ((await call(bridge, key.apiKey, 'db/notes/select')).status === 401 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100, what: 'the revoked key to be refused' });

    // Someone with write access to the Secret flips the status back: the key stays dead.
    await client.patch(Kinds.Secret, secretName, p.namespace, { data: { status: Buffer.from('active').toString('base64') } });
    await eventually(
      async () => ((await client.get<KubeObject & { data?: Record<string, string> }>(Kinds.Secret, secretName, p.namespace)).data?.status === Buffer.from('active').toString('base64') ? true : undefined),
      { what: 'the status patch' },
    );
    // A fresh key after the patch proves the watch delivered it before we look again.
    await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    expectError(await call(bridge, key.apiKey, 'db/notes/select'), 401, 'InvalidApiKey');
  });

  it('deleting the key Secret refuses the key too', async () => {
    const key = await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    expect((await call(bridge, key.apiKey, 'db/notes/select')).status).toBe(200);
    await client.delete(Kinds.Secret, `santokit-apikey-${key.keyId}`, p.namespace);
    await eventually(async () => ((await call(bridge, key.apiKey, 'db/notes/select')).status === 401 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100, what: 'the deleted key to be refused' });
  });

  it('refuses bad commands with the documented exit codes', async () => {
    const unknownEnv = await stk(['apikey', 'create', '--project', p.project, '--env', 'staging', '--name', 'x', '--roles', 'reader']);
    expectExit(unknownEnv, 2);
    expect(unknownEnv.stderr).toContain('environment staging does not exist');
    const noRoles = await stk(['apikey', 'create', '--project', p.project, '--env', 'dev', '--name', 'x']);
    expectExit(noRoles, 1);
    const badRole = await stk(['apikey', 'create', '--project', p.project, '--env', 'dev', '--name', 'x', '--roles', 'drop table']);
    expectExit(badRole, 1);
    const unknownKey = await stk(['apikey', 'revoke', '--project', p.project, '--key-id', 'ak0000000000000000']);
    expectExit(unknownKey, 2);
    const malformed = await stk(['apikey', 'revoke', '--project', p.project, '--key-id', 'nope']);
    expectExit(malformed, 1);
  });

  it('plaintext keys never appear in the data plane or operator logs', () => {
    expect(outputs.length).toBeGreaterThan(0);
    for (const key of outputs) {
      expect(bridge.logs()).not.toContain(key.slice(24));
      expect(operator.logs()).not.toContain(key.slice(24));
    }
  });
});
