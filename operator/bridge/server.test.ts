import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { UnauthorizedError, UnavailableError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';
import type { Serving } from './catalog.ts';
import type { AuthenticatedKey } from './keys.ts';
import { defaultLimits, type BridgeLimits } from './limits.ts';
import { BridgeMetrics } from './metrics.ts';
import { createBridgeHandler, createProbeHandler } from './server.ts';
import { compileServedRelease } from './served-release.ts';

/**
 * The HTTP surface in process, with stand-ins for what lies behind it (key verification, the
 * catalog, the database): the order of checks and the bounds, answer by answer.
 */

const key: AuthenticatedKey = { keyId: 'ak0000000000000001', project: 'shop', environment: 'dev', namespace: 'stk-shop', roles: ['admin'] };
const release = compileServedRelease(
  'rel-1',
  { main: { tables: { items: { name: 'items', columns: [{ name: 'id', type: 'text', nullable: false }], id: { column: 'id', generate: 'client' } } } } },
  { tables: { items: { select: [{ roles: ['admin'], columns: '*' }] } } },
);

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A bridge whose database is unavailable (503), or never answers with `hang` (calls stay in flight). */
function bridge(limits: Partial<BridgeLimits> = {}, events: string[] = [], hang = false) {
  const metrics = new BridgeMetrics();
  const handler = createBridgeHandler({
    authenticate: async (presented) => {
      events.push('authenticate');
      if (presented !== 'good') throw new UnauthorizedError('the API key is not valid (unknown, revoked or malformed)', { reason: 'InvalidApiKey' });
      return key;
    },
    resolve: (): Serving => ({ namespace: key.namespace, environment: key.environment, release }),
    projectOf: () => 'shop',
    pool: () => (hang ? new Promise<postgres.Sql>(() => {}) : Promise.reject(new UnavailableError('the database is unavailable', { reason: 'DatabaseUnavailable' }))),
    metrics,
    log: createLogger('test', 'silent'),
    limits: { ...defaultLimits, ...limits },
  });
  return { handler, metrics };
}

describe('the public surface', () => {
  it('checks the key from the header before reading the body: a refused caller is answered while its body has not been sent', async () => {
    const events: string[] = [];
    const url = new URL(await serve(bridge({}, events).handler));
    const socket = net.connect(Number(url.port), '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const closed = new Promise((r) => socket.on('close', r));
    // 4 MiB announced, nothing sent
    socket.write(`POST /call HTTP/1.1\r\nhost: x\r\ncontent-length: ${4 * 1024 * 1024}\r\nx-santokit-api-key: bad\r\n\r\n`);
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 401 /);
    expect(received.toLowerCase()).toContain('connection: close');
    expect(events).toEqual(['authenticate']);
  });

  it('reads a body that came with the headers and one that trickles in after them alike; either past the limit is 413', async () => {
    const url = new URL(await serve(bridge({ maxBodyBytes: 64 }).handler));
    /** Sends the request over a raw socket, the body at once or in two parts 50 ms apart, and returns the status and error code. */
    const call = async (body: string, trickle: boolean) => {
      const socket = net.connect(Number(url.port), '127.0.0.1');
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      const head = `POST /call HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-santokit-api-key: good\r\n\r\n`;
      if (trickle) {
        socket.write(head + body.slice(0, 5));
        await new Promise((r) => setTimeout(r, 50));
        socket.write(body.slice(5));
      } else socket.write(head + body);
      await new Promise((r) => socket.on('close', r));
      return `${/^HTTP\/1\.1 (\d+)/.exec(received)?.[1]} ${/"code":"(\w+)"/.exec(received)?.[1]}`;
    };
    for (const trickle of [false, true]) {
      // A well-formed call reaches the database (unavailable here); a malformed one is refused by its content.
      expect(await call('{"path":"db/items/select"}', trickle)).toBe('503 DatabaseUnavailable');
      expect(await call('{"path":"db/items/select"', trickle)).toBe('400 InvalidJson');
      expect(await call(`{"path":"db/items/select","params":{"where":{"id":"${'x'.repeat(64)}"}}}`, trickle)).toBe('413 PayloadTooLarge');
    }
  });

  it('a key past its rate gets 429 with Retry-After', async () => {
    const url = await serve(bridge({ keyRatePerSecond: 1, keyBurst: 2 }).handler);
    const post = (apiKey: string) => fetch(`${url}/call`, { method: 'POST', headers: { 'x-santokit-api-key': apiKey }, body: '{"path":"db/items/select"}' });
    // the first two pass the rate (and meet the unavailable database)
    expect([(await post('good')).status, (await post('good')).status]).toEqual([503, 503]);
    const res = await post('good');
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RateLimited');
    // an unknown key is not charged to anyone's rate: it is refused first
    expect((await post('bad')).status).toBe(401);
  });

  it('past the in-flight bound a call is 503 Overloaded with Retry-After, at once', async () => {
    const url = await serve(bridge({ maxInFlight: 3 }, [], true).handler);
    // Three calls that never finish, held until the test lets them go (no deadline a slow machine could pass).
    const holding = new AbortController();
    const held = Array.from({ length: 3 }, () => fetch(`${url}/call`, { method: 'POST', headers: { 'x-santokit-api-key': 'good' }, body: '{"path":"db/items/select"}', signal: holding.signal }).catch(() => undefined));
    try {
      // Once the three are in flight, the next call is refused at once.
      let res: Response | undefined;
      for (const deadline = Date.now() + 30_000; res?.status !== 503 && Date.now() < deadline; ) {
        res = await fetch(`${url}/call`, { method: 'POST', headers: { 'x-santokit-api-key': 'good' }, body: '{}' });
      }
      if (res?.status !== 503) throw new Error(`a call past the in-flight bound was answered ${res?.status}, not 503`);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('Overloaded');
    } finally {
      holding.abort();
      await Promise.all(held);
    }
  });

  it('answers /readyz and /metrics with 404 (they are on the probe port), /healthz with 200', async () => {
    const url = await serve(bridge().handler);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
  });
});

describe('the probe surface', () => {
  it('answers /healthz, /readyz (with the reasons) and /metrics, and nothing else', async () => {
    let why: string[] = ['stk-shop/dev: release rel-1: the release is not loaded yet'];
    const url = await serve(createProbeHandler({ notReady: () => why, metrics: new BridgeMetrics() }));
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${url}/readyz`);
    expect([notReady.status, await notReady.text()]).toEqual([503, why[0]]);
    why = [];
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('santokit_bridge_requests_total');
    expect((await fetch(`${url}/call`, { method: 'POST', body: '{}' })).status).toBe(404);
  });
});
