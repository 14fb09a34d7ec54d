import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { apiKeySecret, generateApiKey, hashApiKey, revocationPatch, verifyApiKey } from '../../core/apikeys.ts';
import { UnauthorizedError, UnavailableError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { createLogger } from '../../core/log.ts';
import { ApiKeyAuthenticator, type AuthenticatorOptions } from './keys.ts';
import type { ProjectSecrets } from './project-secrets.ts';

type SecretObject = KubeObject & { data?: Record<string, string> };

// The real scrypt verification, counted: how often it runs is what some cases claim.
vi.mock('../../core/apikeys.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../core/apikeys.ts')>();
  return { ...actual, verifyApiKey: vi.fn(actual.verifyApiKey) };
});
const scryptRuns = (): number => vi.mocked(verifyApiKey).mock.calls.length;

/** Stands in for the per-namespace Secret informers: events, sync state and how stale each namespace is. */
class FakeInformer extends EventEmitter {
  synced = true;
  pending: string[] = [];
  stale = new Map<string, number>();
  staleFor(namespace: string): number {
    return this.stale.get(namespace) ?? 0;
  }
}

async function setup(options: AuthenticatorOptions = { lastUsedIntervalMs: 60_000, maxConcurrentVerifications: 2, maxStalenessMs: 30_000 }) {
  const informer = new FakeInformer();
  const patches: Array<{ name: string; namespace: string | undefined; patch: unknown }> = [];
  const client = {
    patch: async (_kind: unknown, name: string, namespace: string | undefined, patch: unknown) => {
      patches.push({ name, namespace, patch });
      return {};
    },
  } as unknown as KubeClient;
  const auth = new ApiKeyAuthenticator(informer as unknown as ProjectSecrets, client, createLogger('test', 'silent'), options);
  const { keyId, apiKey } = generateApiKey();
  const secret = apiKeySecret({ namespace: 'stk-shop', project: 'shop', environment: 'dev', keyId, name: 'web', roles: ['reader'], hash: await hashApiKey(apiKey), createdAt: new Date().toISOString() }) as unknown as SecretObject;
  informer.emit('upsert', secret);
  return { informer, auth, patches, keyId, apiKey, secret };
}

async function reason(p: unknown): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UnauthorizedError);
    return (err as UnauthorizedError).reason;
  }
  throw new Error('expected 401');
}

describe('ApiKeyAuthenticator', () => {
  it('accepts an active key, binding it to its project, environment, namespace and roles', async () => {
    const { auth, keyId, apiKey } = await setup();
    expect(await auth.authenticate(apiKey)).toEqual({ keyId, project: 'shop', environment: 'dev', namespace: 'stk-shop', roles: ['reader'] });
  });

  it('refuses no key, a malformed key, an unknown key and a wrong secret alike (401)', async () => {
    const { auth, keyId } = await setup();
    expect(await reason(auth.authenticate(undefined))).toBe('MissingCredential');
    expect(await reason(auth.authenticate(''))).toBe('MissingCredential');
    expect(await reason(auth.authenticate('Bearer nonsense'))).toBe('InvalidApiKey');
    expect(await reason(auth.authenticate(generateApiKey().apiKey))).toBe('InvalidApiKey');
    const wrong = `stk_${keyId}_${'A'.repeat(43)}`;
    expect(await reason(auth.authenticate(wrong))).toBe('InvalidApiKey');
    expect(await reason(auth.authenticate(wrong))).toBe('InvalidApiKey');
  });

  it('a revocation or a deletion seen by the watch refuses the key at once, even after it was verified', async () => {
    const { informer, auth, apiKey, secret } = await setup();
    await auth.authenticate(apiKey);
    informer.emit('upsert', { ...secret, data: { ...secret.data, ...revocationPatch(new Date().toISOString()).data } });
    expect(await reason(auth.authenticate(apiKey))).toBe('InvalidApiKey');
    informer.emit('upsert', secret);
    await auth.authenticate(apiKey);
    informer.emit('delete', secret);
    expect(await reason(auth.authenticate(apiKey))).toBe('InvalidApiKey');
  });

  it('fails closed: a namespace whose key watch failed beyond the bound refuses its keys, cached or not (503)', async () => {
    const { informer, auth, apiKey } = await setup();
    await auth.authenticate(apiKey);
    informer.stale.set('stk-shop', 30_001);
    await expect(auth.authenticate(apiKey)).rejects.toBeInstanceOf(UnavailableError);
    informer.stale.set('stk-shop', 29_000);
    await auth.authenticate(apiKey);
  });

  it('ignores a key Secret whose hash has other scrypt parameters than stk writes (no scrypt work)', async () => {
    const { informer, auth, apiKey, secret } = await setup();
    const hash = Buffer.from(secret.data!.hash!, 'base64').toString('utf8').replace('n=16384', 'n=131072');
    informer.emit('upsert', { ...secret, data: { ...secret.data, hash: Buffer.from(hash).toString('base64') } });
    expect(await reason(auth.authenticate(apiKey))).toBe('InvalidApiKey');
  });

  it('a copy of the key id in another namespace neither displaces nor borrows the key', async () => {
    const { informer, auth, apiKey, keyId } = await setup();
    const forged = apiKeySecret({ namespace: 'stk-evil', project: 'evil', environment: 'dev', keyId, name: 'x', roles: ['admin'], hash: await hashApiKey(generateApiKey().apiKey), createdAt: '' });
    informer.emit('upsert', forged);
    expect(await auth.authenticate(apiKey)).toMatchObject({ namespace: 'stk-shop', roles: ['reader'] });
  });

  it('records lastUsedAt on the Secret at most once per interval', async () => {
    const { auth, apiKey, patches, keyId } = await setup();
    await auth.authenticate(apiKey);
    await auth.authenticate(apiKey);
    await auth.authenticate(apiKey);
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({ name: `santokit-apikey-${keyId}`, namespace: 'stk-shop' });
    expect(JSON.stringify(patches[0]!.patch)).toMatch(/"santokit.io\/last-used-at":"\d{4}-/);
  });

  it('verifies a repeated key without running scrypt again (by the text remembered, or by its SHA-256)', async () => {
    for (const acceptedTtlMs of [60_000, 0]) {
      const { auth, apiKey } = await setup({ lastUsedIntervalMs: 60_000, maxConcurrentVerifications: 2, maxStalenessMs: 30_000, acceptedTtlMs });
      const before = scryptRuns();
      await auth.authenticate(apiKey);
      expect(scryptRuns(), `acceptedTtlMs ${acceptedTtlMs}`).toBe(before + 1);
      for (let i = 0; i < 200; i++) await auth.authenticate(apiKey);
      expect(scryptRuns(), `acceptedTtlMs ${acceptedTtlMs}`).toBe(before + 1);
    }
  });

  it('answers a key verified moments ago synchronously, and only that exact key', async () => {
    const { auth, apiKey, keyId } = await setup();
    const first = auth.authenticate(apiKey);
    expect(first).toBeInstanceOf(Promise);
    await first;
    expect(auth.authenticate(apiKey)).toEqual({ keyId, project: 'shop', environment: 'dev', namespace: 'stk-shop', roles: ['reader'] });
    // The same key id with another secret part is not the remembered key.
    const wrong = `stk_${keyId}_${'B'.repeat(43)}`;
    const refused = auth.authenticate(wrong);
    expect(refused).toBeInstanceOf(Promise);
    expect(await reason(refused)).toBe('InvalidApiKey');
  });

  it('any change of the key Secret sends the next call through the full check (a revocation is refused at once)', async () => {
    const { informer, auth, apiKey, secret } = await setup();
    await auth.authenticate(apiKey);
    expect(auth.authenticate(apiKey)).not.toBeInstanceOf(Promise);
    // An unrelated change (lastUsedAt): verified again by its SHA-256, then fast again.
    informer.emit('upsert', { ...secret, metadata: { ...secret.metadata, annotations: { 'santokit.io/last-used-at': new Date().toISOString() } } });
    const full = auth.authenticate(apiKey);
    expect(full).toBeInstanceOf(Promise);
    await full;
    expect(auth.authenticate(apiKey)).not.toBeInstanceOf(Promise);
    informer.emit('upsert', { ...secret, data: { ...secret.data, ...revocationPatch(new Date().toISOString()).data } });
    expect(await reason(auth.authenticate(apiKey))).toBe('InvalidApiKey');
  });

  it('fails closed on the hot path too: a stale namespace refuses a key answered synchronously a moment before (503)', async () => {
    const { informer, auth, apiKey } = await setup();
    await auth.authenticate(apiKey);
    expect(auth.authenticate(apiKey)).not.toBeInstanceOf(Promise);
    informer.stale.set('stk-shop', 30_001);
    await expect(auth.authenticate(apiKey)).rejects.toMatchObject({ reason: 'KeysStale' });
  });

  it('forgets the text of a key no longer presented once its time has passed (nothing holds it afterwards)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    try {
      const { auth, apiKey } = await setup({ lastUsedIntervalMs: 60_000, maxConcurrentVerifications: 2, maxStalenessMs: 30_000, acceptedTtlMs: 60_000 });
      const remembered = () => (auth as unknown as { accepted: Map<string, unknown> }).accepted;
      await auth.authenticate(apiKey);
      expect(remembered().has(apiKey)).toBe(true);
      vi.advanceTimersByTime(59_000);
      expect(remembered().has(apiKey)).toBe(true);
      vi.advanceTimersByTime(20_000);
      expect(remembered().size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('remembers a key text only for acceptedTtlMs (0: never; the SHA-256 check answers instead)', async () => {
    const { auth, apiKey } = await setup({ lastUsedIntervalMs: 60_000, maxConcurrentVerifications: 2, maxStalenessMs: 30_000, acceptedTtlMs: 0 });
    await auth.authenticate(apiKey);
    const again = auth.authenticate(apiKey);
    expect(again).toBeInstanceOf(Promise);
    expect(await again).toMatchObject({ namespace: 'stk-shop' });
  });
});
