import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../core/errors.ts';
import { DigitalOceanProvider } from '../../operator/infra/digitalocean.ts';
import {
  CloudCredentialsError,
  CloudNotFoundError,
  CloudRateLimitedError,
  CloudRequestRejectedError,
  CloudUnavailableError,
} from '../../operator/infra/errors.ts';
import { startDoSimulator, type DoSimulator } from '../support/do-simulator.ts';
import { simulatedProvider } from './helpers.ts';

const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0kY3n6sVh7c7cX6mF0xk5v1t3Yp0b2yH0mJtq3x1a deploy@example';

let sim: DoSimulator;

beforeEach(async () => {
  sim = await startDoSimulator();
});

afterEach(async () => {
  await sim.close();
});

describe('DigitalOcean client: listing', () => {
  it('follows links.pages.next with per_page=200 until the last page', async () => {
    for (let i = 0; i < 450; i++) sim.seedDroplet({ name: `paging-${i}`, tags: ['santokit-env-paging'] });
    sim.seedDroplet({ name: 'paging-other', tags: ['santokit-env-elsewhere'] });
    const { provider } = simulatedProvider(sim);

    const hosts = await provider.listHostsByTag('santokit-env-paging');

    expect(hosts).toHaveLength(450);
    expect(hosts.every((h) => h.tags.includes('santokit-env-paging'))).toBe(true);
    expect(hosts.map((h) => Number(h.id))).toEqual([...hosts.map((h) => Number(h.id))].sort((a, b) => a - b));
    expect(sim.requestsTo('GET', '/v2/droplets').map((r) => r.query)).toEqual([
      { page: '1', per_page: '200', tag_name: 'santokit-env-paging' },
      { page: '2', per_page: '200', tag_name: 'santokit-env-paging' },
      { page: '3', per_page: '200', tag_name: 'santokit-env-paging' },
    ]);
  });

  it('maps a droplet to the provider-neutral host, picking the public IPv4 once it is active', async () => {
    sim.seedSshKey('mapping-key', PUBLIC_KEY);
    const { provider } = simulatedProvider(sim);
    const created = await provider.createHost({
      name: 'shop-staging-mapping',
      region: 'nyc1',
      size: 's-2vcpu-4gb',
      image: 'ubuntu-24-04-x64',
      sshKeys: [String((await provider.findSshKeyByName('mapping-key'))?.id)],
      tags: ['santokit', 'santokit-env-staging'],
    });
    expect(created).toMatchObject({ status: 'new', publicIPv4: undefined, locked: true });

    sim.activate(created.id);
    const active = await provider.getHost(created.id);
    expect(active).toEqual({
      id: created.id,
      name: 'shop-staging-mapping',
      status: 'active',
      publicIPv4: '203.0.113.1',
      region: 'nyc1',
      size: 's-2vcpu-4gb',
      image: 'ubuntu-24-04-x64',
      tags: ['santokit', 'santokit-env-staging'],
      locked: false,
      createdAt: '2026-01-01T00:00:01Z',
    });
  });
});

describe('DigitalOcean client: retries', () => {
  it('honours retry-after on a 429 and then succeeds', async () => {
    sim.fail({ method: 'GET', path: '/v2/droplets', status: 429, headers: { 'retry-after': '3' } });
    const { provider, waits } = simulatedProvider(sim);

    await expect(provider.listHostsByTag('santokit-env-ratelimited')).resolves.toEqual([]);

    expect(waits).toEqual([3000]);
    expect(sim.requestsTo('GET', '/v2/droplets').map((r) => r.status)).toEqual([429, 200]);
  });

  it('gives up on a long retry-after and tells the caller when to come back', async () => {
    sim.fail({ method: 'GET', path: '/v2/droplets', status: 429, headers: { 'retry-after': '120' } });
    const { provider, waits } = simulatedProvider(sim, { maxRetryAfterMs: 30_000 });

    const err = await provider.listHostsByTag('santokit-env-longwait').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(CloudRateLimitedError);
    expect((err as CloudRateLimitedError).retryAfterMs).toBe(120_000);
    expect((err as CloudRateLimitedError).retryable).toBe(true);
    expect(waits).toEqual([]);
  });

  it('backs off exponentially on 5xx for reads, then succeeds', async () => {
    sim.fail({ method: 'GET', path: /^\/v2\/droplets\/\d+$/, status: 503, times: 2 });
    const seeded = sim.seedDroplet({ name: 'backoff-read' });
    const { provider, waits } = simulatedProvider(sim, { backoffBaseMs: 100, backoffMaxMs: 1_000 });

    await expect(provider.getHost(String(seeded.id))).resolves.toMatchObject({ name: 'backoff-read' });

    expect(waits).toEqual([100, 200]);
  });

  it('stops after the bounded number of attempts with a retryable error', async () => {
    sim.fail({ method: 'GET', path: '/v2/droplets', status: 500, times: 10 });
    const { provider, waits } = simulatedProvider(sim, { maxAttempts: 4, backoffBaseMs: 100, backoffMaxMs: 250 });

    const err = await provider.listHostsByTag('santokit-env-down').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(CloudUnavailableError);
    expect((err as CloudUnavailableError).exitCode).toBe(ExitCode.dependencyFailed);
    expect((err as CloudUnavailableError).details).toMatchObject({ status: 500, code: 'server_error', operation: 'GET /v2/droplets' });
    expect(sim.requestsTo('GET', '/v2/droplets')).toHaveLength(4);
    expect(waits).toEqual([100, 200, 250]);
  });

  it('never repeats a create after a 5xx (the droplet may exist)', async () => {
    sim.fail({ method: 'POST', path: '/v2/droplets', status: 500 });
    const { provider } = simulatedProvider(sim);

    const err = await provider
      .createHost({ name: 'no-retry', region: 'nyc1', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [], tags: ['santokit'] })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(CloudUnavailableError);
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(1);
  });
});

describe('DigitalOcean client: errors and deletion', () => {
  it('deletes by id: 204 first, then 404 counts as already gone', async () => {
    const seeded = sim.seedDroplet({ name: 'delete-me' });
    const { provider } = simulatedProvider(sim);

    await expect(provider.deleteHost(String(seeded.id))).resolves.toBe('deleted');
    await expect(provider.deleteHost(String(seeded.id))).resolves.toBe('absent');
    await expect(provider.getHost(String(seeded.id))).resolves.toBeUndefined();
    expect(sim.requestsTo('DELETE', /^\/v2\/droplets/).map((r) => [r.path, r.status])).toEqual([
      [`/v2/droplets/${seeded.id}`, 204],
      [`/v2/droplets/${seeded.id}`, 404],
    ]);
  });

  it('maps a 422 to a terminal validation error carrying the request id, not in the message', async () => {
    const { provider } = simulatedProvider(sim);

    const err = await provider
      .createHost({ name: 'bad-size', region: 'nyc1', size: 's-99vcpu', image: 'ubuntu-24-04-x64', sshKeys: [], tags: [] })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(CloudRequestRejectedError);
    const rejected = err as CloudRequestRejectedError;
    expect(rejected.retryable).toBe(false);
    expect(rejected.message).toBe('POST /v2/droplets: DigitalOcean rejected the request (You specified an invalid size for Droplet creation.)');
    expect(rejected.details).toEqual({
      provider: 'digitalocean',
      operation: 'POST /v2/droplets',
      status: 422,
      code: 'unprocessable_entity',
      requestId: '5ea1c0de-0000-4000-8000-000000000001',
    });
  });

  it('maps a 404 on an action to NotFound', async () => {
    const { provider } = simulatedProvider(sim);
    await expect(provider.getAction('999')).rejects.toBeInstanceOf(CloudNotFoundError);
  });

  it('reports a rejected token as a credentials problem and never leaks the token', async () => {
    const { provider, log } = simulatedProvider(sim, { token: `dop_v1_${'ab'.repeat(32)}` });

    const err = await provider.listHostsByTag('santokit-env-auth').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(CloudCredentialsError);
    const credentials = err as CloudCredentialsError;
    expect(credentials.status).toBe(401);
    expect(credentials.exitCode).toBe(ExitCode.invalidInput);
    expect(credentials.retryable).toBe(false);
    expect(credentials.message).toBe('GET /v2/droplets: DigitalOcean rejected the API token (Unable to authenticate you)');
    const token = `dop_v1_${'ab'.repeat(32)}`;
    for (const text of [credentials.message, credentials.stack ?? '', inspect(credentials, { depth: 10 }), JSON.stringify(credentials), inspect(provider), JSON.stringify(provider), log()]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain('ab'.repeat(32));
    }
    expect(sim.requestsTo('GET', '/v2/droplets')).toHaveLength(1);
  });

  it('keeps the token out of logs on the happy path too, and sends it only as a bearer header', async () => {
    const { provider, log } = simulatedProvider(sim);
    await provider.listHostsByTag('santokit-env-quiet');
    expect(log()).toContain('DigitalOcean call');
    expect(log()).not.toContain(sim.token);
    expect(sim.requests.every((r) => r.authorized && !r.search.includes(sim.token))).toBe(true);
  });

  it('refuses an empty token before any call', () => {
    expect(() => new DigitalOceanProvider({ token: ' \n', baseUrl: sim.url })).toThrow(/token is empty/);
    expect(sim.requests).toHaveLength(0);
  });

  it('re-anchors next-page links on the configured base URL, so the token goes nowhere else', async () => {
    for (let i = 0; i < 205; i++) sim.seedDroplet({ name: `anchor-${i}`, tags: ['santokit-env-anchor'] });
    const origins: string[] = [];
    const { provider } = simulatedProvider(sim, {
      fetch: async (input, init) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        origins.push(url.origin);
        const res = await fetch(url, init);
        const body = (await res.json()) as { links?: { pages?: { next?: string } } };
        // a next link pointing at another host must not receive the bearer token
        if (body.links?.pages?.next !== undefined) body.links.pages.next = body.links.pages.next.replace(sim.url, 'https://evil.example');
        return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
      },
    });

    const hosts = await provider.listHostsByTag('santokit-env-anchor');

    expect(hosts).toHaveLength(205);
    expect(origins).toEqual([sim.url, sim.url]);
  });
});

describe('DigitalOcean client: SSH keys and tags', () => {
  it('serves SSH key lookups from a cache (the endpoint allows 10 requests a minute)', async () => {
    const key = sim.seedSshKey('deploy', PUBLIC_KEY);
    const { provider } = simulatedProvider(sim);

    const results = await Promise.all(Array.from({ length: 5 }, () => provider.findSshKeyByName('deploy')));
    for (let i = 0; i < 15; i++) await provider.findSshKeyByName(i % 2 === 0 ? 'deploy' : 'missing');

    expect(results.every((r) => r?.id === String(key.id))).toBe(true);
    expect(await provider.findSshKeyByName('missing')).toBeUndefined();
    expect(sim.requestsTo('GET', '/v2/account/keys')).toHaveLength(1);
  });

  it('refetches SSH keys after the cache expires', async () => {
    sim.seedSshKey('deploy', PUBLIC_KEY);
    let now = 1_000_000;
    const { provider } = simulatedProvider(sim, { now: () => now, sshKeyCacheTtlMs: 60_000 });
    await provider.findSshKeyByName('deploy');
    now += 61_000;
    await provider.findSshKeyByName('deploy');
    expect(sim.requestsTo('GET', '/v2/account/keys')).toHaveLength(2);
  });

  it('creates an SSH key and finds it without another listing', async () => {
    const { provider } = simulatedProvider(sim);
    expect(await provider.findSshKeyByName('generated')).toBeUndefined();
    const created = await provider.createSshKey('generated', PUBLIC_KEY);
    expect(created.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    expect(await provider.findSshKeyByName('generated')).toEqual(created);
    expect(sim.requestsTo('GET', '/v2/account/keys')).toHaveLength(1);
  });

  it('adds tags to a droplet, creating a tag that does not exist yet', async () => {
    const seeded = sim.seedDroplet({ name: 'tag-me', tags: ['santokit'] });
    const { provider } = simulatedProvider(sim);

    await provider.tagHost(String(seeded.id), ['web', 'santokit']);

    expect(sim.droplet(seeded.id)?.tags.sort()).toEqual(['santokit', 'web']);
    expect(sim.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /v2/tags/santokit/resources 204',
      'POST /v2/tags/web/resources 404',
      'POST /v2/tags 201',
      'POST /v2/tags/web/resources 204',
    ]);
  });
});
