import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { apiKeySecret, generateApiKey, hashApiKey, isAcceptedApiKeyHash } from '../../core/apikeys.ts';
import { TooManyRequestsError, UnauthorizedError, UnavailableError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { createLogger } from '../../core/log.ts';
import { ApiKeyAuthenticator } from './keys.ts';
import type { ProjectSecrets } from './project-secrets.ts';
import { rateLimited, retryAfterOf, TokenBuckets } from './limits.ts';

type SecretObject = KubeObject & { data?: Record<string, string> };

describe('TokenBuckets', () => {
  it('lets a burst through, then one call per 1/rate seconds, and says how long to wait', () => {
    let now = 0;
    const buckets = new TokenBuckets(2, 3, 100, () => now);
    expect([buckets.take('a'), buckets.take('a'), buckets.take('a')]).toEqual([0, 0, 0]);
    expect(buckets.take('a')).toBeCloseTo(0.5);
    now += 500;
    expect(buckets.take('a')).toBe(0);
    expect(buckets.take('a')).toBeCloseTo(0.5);
    // another key has its own bucket
    expect(buckets.take('b')).toBe(0);
    // idle time refills up to the burst, not beyond
    now += 60_000;
    expect([buckets.take('a'), buckets.take('a'), buckets.take('a'), buckets.take('a') > 0]).toEqual([0, 0, 0, true]);
  });

  it('rate 0 turns the limit off', () => {
    const buckets = new TokenBuckets(0, 1);
    for (let i = 0; i < 1000; i++) expect(buckets.take('a')).toBe(0);
  });

  it('bounds the number of tracked keys', () => {
    let now = 0;
    const buckets = new TokenBuckets(1, 1, 10, () => now);
    for (let i = 0; i < 1000; i++) buckets.take(`k${i}`);
    now += 5_000;
    expect(buckets.take('k999')).toBe(0);
    expect((buckets as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(10);
  });

  it('a refusal is a 429 with Retry-After of at least a second', () => {
    const err = rateLimited(0.2);
    expect(err).toBeInstanceOf(TooManyRequestsError);
    expect(err.status).toBe(429);
    expect(err.retryAfterSeconds).toBe(1);
  });
});

describe('API-key hashes the data plane verifies', () => {
  it('accepts what stk writes, nothing costlier or odder', async () => {
    expect(isAcceptedApiKeyHash(await hashApiKey(generateApiKey().apiKey))).toBe(true);
    const salt = randomBytes(16).toString('base64url');
    const digest = randomBytes(32).toString('base64url');
    for (const params of ['n=131072,r=16,p=4', 'n=32768,r=8,p=1', 'n=16384,r=9,p=1', 'n=16384,r=8,p=2', 'n=1024,r=8,p=1']) {
      expect(isAcceptedApiKeyHash(`scrypt$v=1$${params}$${salt}$${digest}`), params).toBe(false);
    }
    expect(isAcceptedApiKeyHash(`scrypt$v=1$n=16384,r=8,p=1$${salt}$${digest}x`)).toBe(false);
  });
});

/** Stands in for the per-namespace Secret informers (as in keys.test.ts): events, sync state, staleness. */
class FakeInformer extends EventEmitter {
  synced = true;
  pending: string[] = [];
  staleFor(): number {
    return 0;
  }
}

function authenticator(options: { maxConcurrentVerifications: number; maxQueuedVerifications: number }) {
  const informer = new FakeInformer();
  const client = { patch: async () => ({}) } as unknown as KubeClient;
  const auth = new ApiKeyAuthenticator(informer as unknown as ProjectSecrets, client, createLogger('test', 'silent'), { lastUsedIntervalMs: 60_000, maxStalenessMs: 30_000, ...options });
  const plant = (keyId: string, hash: string) =>
    informer.emit('upsert', apiKeySecret({ namespace: 'stk-shop', project: 'shop', environment: 'dev', keyId, name: 'k', roles: ['admin'], hash, createdAt: '' }) as unknown as SecretObject);
  return { auth, plant };
}

describe('ApiKeyAuthenticator bounds', () => {
  it('a key Secret with other scrypt parameters is ignored: its key is 401 without any verification', async () => {
    const { auth, plant } = authenticator({ maxConcurrentVerifications: 1, maxQueuedVerifications: 0 });
    const { keyId, apiKey } = generateApiKey();
    // costly parameters, and a digest that would never match anyway
    plant(keyId, `scrypt$v=1$n=131072,r=16,p=4$${randomBytes(16).toString('base64url')}$${randomBytes(32).toString('base64url')}`);
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => auth.authenticate(apiKey)));
    // all 401, none 503: with one verification at a time and no queue, any verification would
    // have turned the other three into 503
    for (const o of outcomes) expect(o.status === 'rejected' && o.reason instanceof UnauthorizedError).toBe(true);
  });

  it('verifications past the running and queued bounds are refused at once with 503 and Retry-After', async () => {
    const { auth, plant } = authenticator({ maxConcurrentVerifications: 1, maxQueuedVerifications: 2 });
    const { keyId, apiKey } = generateApiKey();
    plant(keyId, await hashApiKey(apiKey));
    // ten different wrong secrets for a known key id, all at once: each needs its own scrypt run
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => auth.authenticate(`stk_${keyId}_${randomBytes(32).toString('base64url')}`)));
    const reasons = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error) : undefined));
    const busy = reasons.filter((r) => r instanceof UnavailableError);
    expect(reasons.filter((r) => r instanceof UnauthorizedError)).toHaveLength(3);
    expect(busy).toHaveLength(7);
    for (const b of busy) expect(retryAfterOf(b)).toBeGreaterThanOrEqual(1);
    // the right key still verifies once the queue has room
    expect(await auth.authenticate(apiKey)).toMatchObject({ keyId });
  });
});
