import { afterEach, describe, expect, it } from 'vitest';
import type { InfraHostStatus } from '../../core/api/resources.ts';
import { ownershipTag } from '../../core/infra/hosts.ts';
import type { RunRecord } from '../../core/infra/run.ts';
import { DigitalOceanProvider } from '../../operator/infra/digitalocean.ts';
import type { ExternalEvent, ManagedHost, ProviderKey } from '../../operator/infra/external.ts';
import { HostClient } from '../../operator/infra/host-client.ts';
import { reconcileManaged, type LoopOutcome, type RecordStore } from '../../operator/infra/managed.ts';
import type { CreateFailure, HostSpec } from '../../operator/infra/plan.ts';
import type { ResizeRecord } from '../../operator/infra/resize.ts';
import { startDoSimulator, type DoSimulator, type DoSimulatorOptions } from '../support/do-simulator.ts';
import { capturingLogger } from './helpers.ts';

/**
 * The InfraHost against a DigitalOcean simulator as strict as DigitalOcean's published behaviour:
 * server errors (also on create), 429 bursts with `retry-after` (and 429 again for a client that
 * ignores it), the rate-limit budget, equal names, paging at the documented maximum of 200.
 * Time is a fake clock shared by the simulator, the client and the loop: nothing here sleeps.
 */

const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0kY3n6sVh7c7cX6mF0xk5v1t3Yp0b2yH0mJtq3x1a deploy@example';
const START = Date.parse('2026-11-25T12:00:00Z');

class Clock {
  t = START;
  readonly waits: number[] = [];
  readonly now = (): number => this.t;
  readonly sleep = async (ms: number): Promise<void> => {
    this.waits.push(ms);
    this.t += ms;
  };
}

let sim: DoSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function strictWorld(options: DoSimulatorOptions = {}): Promise<{ sim: DoSimulator; clock: Clock; provider: DigitalOceanProvider; key: ProviderKey }> {
  const clock = new Clock();
  const s = (sim = await startDoSimulator({ activateAfterPolls: 1, now: clock.now, ...options }));
  const seeded = s.seedSshKey('deploy', PUBLIC_KEY);
  const provider = new DigitalOceanProvider({ token: s.token, baseUrl: s.url, logger: capturingLogger('strict').logger, sleep: clock.sleep, now: clock.now, random: () => 1 });
  return { sim: s, clock, provider, key: { id: String(seeded.id), fingerprint: seeded.fingerprint } };
}

/** What the reconciler keeps for one host between passes (annotations and status), in memory. */
class Records implements RecordStore {
  createPendingSince?: string;
  createFailure?: CreateFailure;
  recordedId?: string;
  resize: ResizeRecord = { inProgress: false };
  readonly status: InfraHostStatus = {};
  readonly events: ExternalEvent[] = [];
  readonly run: RunRecord = { request: 'r1', generation: 1 };
  async markCreatePending(since: string): Promise<void> {
    this.createPendingSince = since;
  }
  async clearCreatePending(): Promise<void> {
    delete this.createPendingSince;
    delete this.createFailure;
  }
  async recordCreateFailure(failure: CreateFailure): Promise<void> {
    this.createFailure = failure;
  }
  async recordHost(id: string): Promise<void> {
    this.recordedId = id;
    delete this.createPendingSince;
    delete this.createFailure;
  }
  async recordResize(record: ResizeRecord): Promise<void> {
    this.resize = record;
  }
  condition(type: string): { status: string; reason: string; message: string } | undefined {
    return this.status.conditions?.find((c) => c.type === type);
  }
}

const spec = (host: string): HostSpec => ({ project: 'shop', environment: 'staging', host, region: 'nyc1', size: 's-2vcpu-4gb', image: 'ubuntu-24-04-x64', tags: [] });

async function pass(w: { clock: Clock; provider: DigitalOceanProvider; key: ProviderKey }, uid: string, host: string, r: Records): Promise<LoopOutcome> {
  const mr: ManagedHost = {
    uid,
    spec: spec(host),
    resize: r.resize,
    ...(r.recordedId === undefined ? {} : { recordedId: r.recordedId }),
    ...(r.createPendingSince === undefined ? {} : { createPendingSince: r.createPendingSince }),
    ...(r.createFailure === undefined ? {} : { createFailure: r.createFailure }),
  };
  return reconcileManaged({
    mr,
    key: w.key,
    client: new HostClient(w.provider),
    store: r,
    status: r.status,
    generation: 1,
    run: r.run,
    record: async (e) => {
      r.events.push(e);
    },
    now: w.clock.now,
  });
}

describe('a server error on create', () => {
  it('is retried after the consistency window once the tag lookup shows nothing was created', async () => {
    const w = await strictWorld();
    w.sim.fail({ method: 'POST', path: '/v2/droplets', status: 503 });
    const r = new Records();
    const uid = '5e1f0000-0000-4000-8000-000000000001';

    const first = await pass(w, uid, 'app-1', r);
    const failure = r.createFailure;
    const retrying = r.condition('Provisioned');
    w.clock.t += 5_000;
    const early = await pass(w, uid, 'app-1', r);
    const postsBeforeWindow = w.sim.requestsTo('POST', '/v2/droplets').length;
    w.clock.t += 6_000;
    const retried = await pass(w, uid, 'app-1', r);

    expect(first).toEqual({ kind: 'requeue', requeueAfterMs: 10_000, settled: false });
    expect(failure).toEqual({ at: '2026-11-25T12:00:00Z', status: 503, attempts: 1 });
    expect(retrying).toMatchObject({ status: 'Unknown', reason: 'CreateRetrying' });
    expect(early).toMatchObject({ kind: 'requeue', settled: false });
    expect(postsBeforeWindow).toBe(1);
    expect(retried.kind).toBe('requeue');
    expect(w.sim.requestsTo('POST', '/v2/droplets').map((q) => q.status)).toEqual([503, 202]);
    expect(w.sim.droplets()).toHaveLength(1);
    expect(r.recordedId).toBe(String(w.sim.droplets()[0]?.id));
    expect(r.createPendingSince).toBeUndefined();
    expect(r.createFailure).toBeUndefined();
    expect(r.events.map((e) => e.reason)).toEqual(['CreateRetrying', 'HostCreated']);
  });

  it('adopts the droplet, not a second one, when the create took effect despite the 5xx', async () => {
    const w = await strictWorld();
    w.sim.fail({ method: 'POST', path: '/v2/droplets', status: 500, afterEffect: true });
    const r = new Records();
    const uid = '5e1f0000-0000-4000-8000-000000000002';

    await pass(w, uid, 'app-1', r);
    w.clock.t += 11_000;
    await pass(w, uid, 'app-1', r);

    expect(w.sim.droplets()).toHaveLength(1);
    expect(w.sim.requestsTo('POST', '/v2/droplets').map((q) => q.status)).toEqual([500]);
    expect(r.recordedId).toBe(String(w.sim.droplets()[0]?.id));
    expect(r.events.at(-1)?.reason).toBe('HostAdopted');
  });

  it('backs off 10 s, 20 s, 40 s and gives the run its answer after three failed creates, while retrying on', async () => {
    const w = await strictWorld();
    w.sim.fail({ method: 'POST', path: '/v2/droplets', status: 502, times: 3 });
    const r = new Records();
    const uid = '5e1f0000-0000-4000-8000-000000000003';

    const outcomes: LoopOutcome[] = [];
    for (const gap of [0, 10_000, 20_000, 40_000]) {
      w.clock.t += gap;
      outcomes.push(await pass(w, uid, 'app-1', r));
    }

    expect(outcomes.slice(0, 3).map((o) => (o.kind === 'requeue' ? [o.requeueAfterMs, o.settled] : o.kind))).toEqual([
      [10_000, false],
      [20_000, false],
      [40_000, true],
    ]);
    expect(w.sim.requestsTo('POST', '/v2/droplets').map((q) => q.status)).toEqual([502, 502, 502, 202]);
    expect(w.sim.droplets()).toHaveLength(1);
  });
});

describe('the rate limit', () => {
  it("pauses the whole client for a 429's retry-after, not only the request that got it", async () => {
    const s = (sim = await startDoSimulator());
    const seeded = s.seedDroplet({ name: 'paused' });
    s.fail({ method: 'GET', path: '/v2/droplets', status: 429, headers: { 'retry-after': '2' } });
    const t = START;
    const waits: number[] = [];
    const release: Array<() => void> = [];
    const provider = new DigitalOceanProvider({
      token: s.token,
      baseUrl: s.url,
      logger: capturingLogger('pause').logger,
      now: () => t,
      sleep: (ms) => {
        waits.push(ms);
        return new Promise<void>((resolve) => release.push(resolve));
      },
    });

    const listing = provider.listHostsByTag('santokit');
    await until(() => waits.length === 1);
    const reading = provider.getHost(String(seeded.id));
    await until(() => waits.length === 2);
    const sentDuringPause = s.requests.length;
    for (const r of release) r();
    await Promise.all([listing, reading]);

    expect(waits).toEqual([2_000, 2_000]);
    expect(sentDuringPause).toBe(1);
    expect(s.requests.map((q) => q.status)).toEqual([429, 200, 200]);
    expect(s.requests.slice(1).map((q) => q.path).sort()).toEqual(['/v2/droplets', `/v2/droplets/${seeded.id}`]);
  });

  it('slows down before ratelimit-remaining runs out: the last requests are spread until the reset', async () => {
    const s = (sim = await startDoSimulator({ rateLimit: 20 }));
    const seeded = s.seedDroplet({ name: 'budget' });
    const clock = new Clock();
    const provider = new DigitalOceanProvider({ token: s.token, baseUrl: s.url, logger: capturingLogger('budget').logger, sleep: clock.sleep, now: clock.now, rateLimitReserve: 10 });
    await provider.getHost(String(seeded.id));
    const resetAt = provider.rateLimit?.resetAt ?? 0;
    clock.t = resetAt - 10_000;

    for (let i = 0; i < 18; i++) await provider.getHost(String(seeded.id));

    expect(s.requests.map((q) => q.status).filter((st) => st !== 200)).toEqual([]);
    expect(s.requests).toHaveLength(19);
    // 9 requests before the budget is low go at once; then one a second or so until the reset
    expect(clock.waits.length).toBeGreaterThanOrEqual(8);
    expect(Math.min(...clock.waits)).toBeGreaterThanOrEqual(1_000);
    expect(clock.t).toBeLessThanOrEqual(resetAt);
  });
});

describe('a strict DigitalOcean: periodic 5xx, 429 bursts, paging at 200', () => {
  it('lists 205 tagged droplets in two pages of the documented maximum, through the faults', async () => {
    const w = await strictWorld({ serverErrorEvery: 2, rateLimitBurst: { every: 1, length: 1, retryAfterSeconds: 1 } });
    for (let i = 0; i < 205; i++) w.sim.seedDroplet({ name: `paged-${i}`, tags: ['santokit-env-paged'] });
    w.sim.seedDroplet({ name: 'other', tags: ['santokit-env-other'] });

    const hosts = await w.provider.listHostsByTag('santokit-env-paged');

    expect(hosts).toHaveLength(205);
    expect(new Set(hosts.map((h) => h.id)).size).toBe(205);
    const answered = w.sim.requestsTo('GET', '/v2/droplets').filter((q) => q.status === 200);
    expect(answered.map((q) => [q.query.page, q.query.per_page])).toEqual([
      ['1', '200'],
      ['2', '200'],
    ]);
    expect(w.sim.requests.filter((q) => q.status !== 200).length).toBeGreaterThan(0);
    expect(w.sim.requests.filter((q) => q.duringRetryAfter === true)).toEqual([]);
  });

  it('brings two hosts from nothing to provisioned with exactly one droplet each, never ignoring a retry-after', async () => {
    const w = await strictWorld({ serverErrorEvery: 4, rateLimitBurst: { every: 3, length: 2, retryAfterSeconds: 1 } });
    const hosts = [
      { uid: '5e1f0000-0000-4000-8000-00000000000a', host: 'app-1', r: new Records() },
      { uid: '5e1f0000-0000-4000-8000-00000000000b', host: 'db-1', r: new Records() },
    ];
    // a foreign droplet with another host's name (no tag): must stay untouched and not be duplicated
    const foreign = w.sim.seedDroplet({ name: 'shop-staging-cache-1', tags: ['web'] });
    // and the first create is answered with a server error
    w.sim.fail({ method: 'POST', path: '/v2/droplets', status: 503 });

    const ready = new Set<string>();
    for (let round = 0; round < 40 && ready.size < hosts.length; round++) {
      for (const h of hosts) {
        if (ready.has(h.host)) continue;
        try {
          const out = await pass(w, h.uid, h.host, h.r);
          if (out.kind === 'ready') ready.add(h.host);
          else w.clock.t += out.requeueAfterMs;
        } catch {
          // a pass that ran out of retries: the controller requeues with backoff
          w.clock.t += 5_000;
        }
      }
    }

    expect([...ready].sort()).toEqual(['app-1', 'db-1']);
    for (const h of hosts) {
      const mine = w.sim.droplets().filter((d) => d.tags.includes(ownershipTag(h.uid)));
      expect(mine.map((d) => String(d.id))).toEqual([h.r.recordedId]);
      expect(mine[0]?.name).toBe(`shop-staging-${h.host}`);
    }
    expect(w.sim.droplets()).toHaveLength(3);
    expect(w.sim.requestsTo('POST', '/v2/droplets').map((q) => q.status).filter((st) => st !== 429)).toEqual([503, 202, 202]);
    expect(w.sim.droplet(foreign.id)?.tags).toEqual(['web']);
    expect(w.sim.requests.filter((q) => q.status >= 500).length).toBeGreaterThan(0);
    expect(w.sim.requests.filter((q) => q.status === 429).length).toBeGreaterThan(0);
    expect(w.sim.requests.filter((q) => q.duringRetryAfter === true)).toEqual([]);
  });
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met within the deadline');
    await new Promise((r) => setTimeout(r, 5));
  }
}
