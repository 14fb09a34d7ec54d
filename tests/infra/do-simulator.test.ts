import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDoSimulator, type DoSimulator } from '../support/do-simulator.ts';

/** Pins the simulator to DigitalOcean's published behaviour, so client tests prove something. */

const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0kY3n6sVh7c7cX6mF0xk5v1t3Yp0b2yH0mJtq3x1a deploy@example';

let sim: DoSimulator;

beforeEach(async () => {
  sim = await startDoSimulator({ activateAfterPolls: 1 });
});

afterEach(async () => {
  await sim.close();
});

async function api(method: string, path: string, body?: unknown, token = sim.token): Promise<{ status: number; headers: Headers; json: unknown }> {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) };
}

describe('DigitalOcean simulator fidelity', () => {
  it('answers a create with 202, status new, no public address, and a create action link', async () => {
    const res = await api('POST', '/v2/droplets', { name: 'sim-create', region: 'nyc1', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: ['santokit'] });
    expect(res.status).toBe(202);
    const body = res.json as { droplet: { id: number; status: string; networks: { v4: unknown[] }; size_slug: string; region: { slug: string }; image: { slug: string } }; links: { actions: Array<{ rel: string; href: string }> } };
    expect(body.droplet).toMatchObject({ status: 'new', networks: { v4: [] }, size_slug: 's-1vcpu-1gb', region: { slug: 'nyc1' }, image: { slug: 'ubuntu-24-04-x64' } });
    expect(body.links.actions[0]).toMatchObject({ rel: 'create', href: expect.stringMatching(/\/v2\/actions\/\d+$/) });

    const first = await api('GET', `/v2/droplets/${body.droplet.id}`);
    const second = await api('GET', `/v2/droplets/${body.droplet.id}`);
    expect((first.json as { droplet: { status: string } }).droplet.status).toBe('new');
    expect((second.json as { droplet: { status: string; networks: { v4: Array<{ type: string }> } } }).droplet).toMatchObject({
      status: 'active',
      networks: { v4: [{ type: 'private' }, { type: 'public' }] },
    });
  });

  it('allows two droplets with the same name', async () => {
    const spec = { name: 'sim-twin', region: 'nyc1', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64' };
    expect((await api('POST', '/v2/droplets', spec)).status).toBe(202);
    expect((await api('POST', '/v2/droplets', spec)).status).toBe(202);
    const list = await api('GET', '/v2/droplets?name=sim-twin');
    expect((list.json as { meta: { total: number } }).meta.total).toBe(2);
  });

  it('pages lists with links.pages (first, prev, next, last) and meta.total', async () => {
    for (let i = 0; i < 5; i++) sim.seedDroplet({ name: `sim-page-${i}`, tags: ['sim-paged'] });
    const middle = await api('GET', '/v2/droplets?tag_name=sim-paged&per_page=2&page=2');
    expect(middle.json).toMatchObject({
      droplets: [{ name: 'sim-page-2' }, { name: 'sim-page-3' }],
      links: {
        pages: {
          first: `${sim.url}/v2/droplets?tag_name=sim-paged&page=1&per_page=2`,
          prev: `${sim.url}/v2/droplets?tag_name=sim-paged&page=1&per_page=2`,
          next: `${sim.url}/v2/droplets?tag_name=sim-paged&page=3&per_page=2`,
          last: `${sim.url}/v2/droplets?tag_name=sim-paged&page=3&per_page=2`,
        },
      },
      meta: { total: 5 },
    });
    const single = await api('GET', '/v2/droplets?tag_name=sim-paged&per_page=200');
    expect((single.json as { links: unknown }).links).toEqual({});
  });

  it('sends rate-limit headers and the error body with a request id', async () => {
    const res = await api('GET', '/v2/droplets/123');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ id: 'not_found', message: 'The resource you were accessing could not be found.', request_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(res.headers.get('ratelimit-limit')).toBe('5000');
    expect(Number(res.headers.get('ratelimit-remaining'))).toBeLessThan(5000);
    expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
  });

  it('rejects a wrong token with 401 Unauthorized', async () => {
    const res = await api('GET', '/v2/droplets', undefined, 'dop_v1_wrong');
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ id: 'Unauthorized', message: 'Unable to authenticate you' });
    expect(sim.requests[0]?.authorized).toBe(false);
  });

  it('deletes with 204 and then answers 404', async () => {
    const d = sim.seedDroplet({ name: 'sim-delete' });
    expect((await api('DELETE', `/v2/droplets/${d.id}`)).status).toBe(204);
    expect((await api('DELETE', `/v2/droplets/${d.id}`)).status).toBe(404);
  });

  it('limits SSH key listings to 10 a minute with a retry-after', async () => {
    sim.seedSshKey('sim-key', PUBLIC_KEY);
    for (let i = 0; i < 10; i++) expect((await api('GET', '/v2/account/keys')).status).toBe(200);
    const limited = await api('GET', '/v2/account/keys');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('refuses to resize a droplet that is on, and locks it while an action runs', async () => {
    const d = sim.seedDroplet({ name: 'sim-resize' });
    const on = await api('POST', `/v2/droplets/${d.id}/actions`, { type: 'resize', size: 's-4vcpu-8gb', disk: false });
    expect(on.status).toBe(422);
    expect(on.json).toMatchObject({ id: 'unprocessable_entity', message: 'Droplet is currently on. Please power it off to run this event.' });

    const off = await api('POST', `/v2/droplets/${d.id}/actions`, { type: 'power_off' });
    expect(off.json).toMatchObject({ action: { type: 'power_off', status: 'in-progress', resource_type: 'droplet' } });
    expect(sim.droplet(d.id)?.locked).toBe(true);
    sim.completeActions();
    expect(sim.droplet(d.id)).toMatchObject({ locked: false, status: 'off' });
  });

  it('plays scripted faults once, then behaves again', async () => {
    sim.fail({ method: 'GET', path: '/v2/droplets', status: 429, headers: { 'retry-after': '7' } });
    const limited = await api('GET', '/v2/droplets');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(limited.json).toMatchObject({ id: 'too_many_requests' });
    expect((await api('GET', '/v2/droplets')).status).toBe(200);
  });

  it('in strict mode answers 500 periodically, 429 in bursts, and 429 again to a client that ignores retry-after', async () => {
    await sim.close();
    let t = Date.parse('2026-11-25T12:00:00Z');
    sim = await startDoSimulator({ serverErrorEvery: 3, rateLimitBurst: { every: 4, length: 1, retryAfterSeconds: 2 }, now: () => t });

    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await api('GET', '/v2/droplets')).status);
    const ignored = await api('GET', '/v2/droplets');
    t += 2_000;
    const honoured = await api('GET', '/v2/droplets');

    // accepted 1, 2, 3 (500), 4 (a burst follows), then the burst's 429
    expect(statuses).toEqual([200, 200, 500, 200, 429]);
    expect(ignored.status).toBe(429);
    expect(sim.requests.filter((r) => r.duringRetryAfter === true)).toHaveLength(1);
    expect(honoured.status).toBe(200);
  });

  it('creates the droplet and still answers the scripted fault when the fault comes after the effect', async () => {
    sim.fail({ method: 'POST', path: '/v2/droplets', status: 500, afterEffect: true });
    const res = await api('POST', '/v2/droplets', { name: 'sim-effect', region: 'nyc1', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: ['santokit'] });
    expect(res.status).toBe(500);
    expect(sim.droplets().map((d) => d.name)).toEqual(['sim-effect']);
  });
});
