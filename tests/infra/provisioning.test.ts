import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InfraHostStatus } from '../../core/api/resources.ts';
import { loadDesiredHosts, ownershipTag, toInfraHostSpec, type DesiredHost } from '../../core/infra/hosts.ts';
import type { RunRecord } from '../../core/infra/run.ts';
import { DigitalOceanProvider } from '../../operator/infra/digitalocean.ts';
import type { ExternalEvent, ManagedHost, ProviderKey } from '../../operator/infra/external.ts';
import { HostClient } from '../../operator/infra/host-client.ts';
import { finalizeManaged, reconcileManaged, type LoopOutcome, type RecordStore } from '../../operator/infra/managed.ts';
import type { AdoptPolicy, CreateFailure, HostSpec } from '../../operator/infra/plan.ts';
import type { ResizeRecord } from '../../operator/infra/resize.ts';
import { startDoSimulator, type DoSimulator } from '../support/do-simulator.ts';
import { simulatedProvider } from './helpers.ts';

/**
 * The InfraHost's managed loop (operator/infra/managed.ts) and its external client
 * (operator/infra/host-client.ts), driven pass by pass against the DigitalOcean simulator: the
 * product's own code, with only Kubernetes replaced by `Records` (what the reconciler keeps in
 * annotations and status between passes) and the clock made explicit.
 */

const HOSTS_YAML = `provider: digitalocean
credentialsSecretRef: { name: do-token, key: token }
defaults: { region: nyc1, size: s-2vcpu-4gb, image: ubuntu-24-04-x64 }
sshKey: { name: deploy, privateKeySecretRef: { name: deploy-ssh, key: id_ed25519 } }
environments:
  staging:
    db-1:  { role: db, size: s-4vcpu-8gb }
    app-1: { role: app }
`;
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0kY3n6sVh7c7cX6mF0xk5v1t3Yp0b2yH0mJtq3x1a deploy@example';
const UIDS: Record<string, string> = {
  'staging-app-1': '1a2b3c4d-0000-4000-8000-00000000a001',
  'staging-db-1': '1a2b3c4d-0000-4000-8000-00000000d001',
};
const NOW = Date.parse('2026-11-25T12:00:00Z');

/** What the reconciler keeps for one InfraHost between passes: its annotations (RecordStore) and status. */
class Records implements RecordStore {
  createPendingSince?: string;
  createFailure?: CreateFailure;
  recordedId?: string;
  sshKey?: string;
  resize: ResizeRecord = { inProgress: false };
  readonly status: InfraHostStatus = {};
  readonly events: ExternalEvent[] = [];
  /** the run record of the current run (the loop updates it in place) */
  run: RunRecord = { request: 'r1', generation: 1 };
  /** the run record as written along with the host's id */
  writtenRun?: RunRecord;

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
  async recordHost(id: string, sshKeyFingerprint: string | undefined, run: RunRecord): Promise<void> {
    this.recordedId = id;
    delete this.createPendingSince;
    delete this.createFailure;
    if (sshKeyFingerprint !== undefined) this.sshKey = sshKeyFingerprint;
    this.writtenRun = { ...run };
  }
  async recordResize(record: ResizeRecord): Promise<void> {
    this.resize = record;
  }

  condition(type: string): { status: string; reason: string; message: string } | undefined {
    return this.status.conditions?.find((c) => c.type === type);
  }
}

interface Host {
  readonly name: string;
  readonly uid: string;
  spec: HostSpec;
  adopt?: AdoptPolicy;
  readonly records: Records;
}

function managed(h: Host): ManagedHost {
  const r = h.records;
  return {
    uid: h.uid,
    spec: h.spec,
    resize: r.resize,
    ...(h.adopt === undefined ? {} : { adopt: h.adopt }),
    ...(r.recordedId === undefined ? {} : { recordedId: r.recordedId }),
    ...(r.createPendingSince === undefined ? {} : { createPendingSince: r.createPendingSince }),
    ...(r.createFailure === undefined ? {} : { createFailure: r.createFailure }),
    ...(r.sshKey === undefined ? {} : { recordedSshKey: r.sshKey }),
  };
}

function specOf(h: DesiredHost): HostSpec {
  const s = toInfraHostSpec(h);
  return { project: s.project, environment: s.environment, host: s.host, region: s.region, size: s.size, image: s.image, tags: s.tags };
}

let sim: DoSimulator;
let provider: DigitalOceanProvider;
let client: HostClient;
let key: ProviderKey;
let hosts: Host[];

beforeEach(async () => {
  sim = await startDoSimulator({ activateAfterPolls: 2 });
  const seeded = sim.seedSshKey('deploy', PUBLIC_KEY);
  key = { id: String(seeded.id), fingerprint: seeded.fingerprint };
  provider = simulatedProvider(sim).provider;
  client = new HostClient(provider);
  hosts = loadDesiredHosts(HOSTS_YAML, { project: 'shop' }).map((d) => ({ name: d.resourceName, uid: UIDS[d.resourceName] ?? '', spec: specOf(d), records: new Records() }));
  sim.clearRequests();
});

afterEach(async () => {
  await sim.close();
});

function host(name: string): Host {
  const h = hosts.find((x) => x.name === name);
  if (h === undefined) throw new Error(`no host ${name}`);
  return h;
}

/** One pass of the real loop for one host, at `now`. */
async function pass(h: Host, now = NOW): Promise<LoopOutcome> {
  const r = h.records;
  return reconcileManaged({
    mr: managed(h),
    key,
    client,
    store: r,
    status: r.status,
    generation: 1,
    run: r.run,
    record: async (e) => {
      r.events.push(e);
    },
    now: () => now,
  });
}

/** Passes until the host is ready (or `max` passes went by); the outcomes' kinds and Provisioned reasons. */
async function untilReady(h: Host, max = 15): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < max; i++) {
    const out = await pass(h);
    seen.push(out.kind === 'ready' ? 'ready' : (h.records.condition('Provisioned')?.reason ?? '?'));
    if (out.kind === 'ready') break;
  }
  return seen;
}

describe('provisioning from nothing', () => {
  it('sends exactly these create requests, in host order, and records the ids and the key', async () => {
    for (const h of hosts) await pass(h);

    expect(sim.requestsTo('POST', '/v2/droplets').map((r) => r.body)).toEqual([
      {
        name: 'shop-staging-app-1',
        region: 'nyc1',
        size: 's-2vcpu-4gb',
        image: 'ubuntu-24-04-x64',
        ssh_keys: [41000001],
        tags: ['santokit', 'santokit-env-staging', 'santokit-owner-1a2b3c4d-0000-4000-8000-00000000a001'],
      },
      {
        name: 'shop-staging-db-1',
        region: 'nyc1',
        size: 's-4vcpu-8gb',
        image: 'ubuntu-24-04-x64',
        ssh_keys: [41000001],
        tags: ['santokit', 'santokit-env-staging', 'santokit-owner-1a2b3c4d-0000-4000-8000-00000000d001'],
      },
    ]);
    const app = host('staging-app-1').records;
    expect(app).toMatchObject({ recordedId: String(sim.droplets()[0]?.id), sshKey: key.fingerprint, run: { created: true } });
    expect(app.createPendingSince).toBeUndefined();
    expect(app.events.map((e) => e.reason)).toEqual(['HostCreated']);
  });

  it('creates nothing on later passes: every host is found by its tag and left as it is', async () => {
    for (const h of hosts) await untilReady(h);
    sim.clearRequests();
    const recorded = hosts.map((h) => h.records.recordedId);

    for (const h of hosts) expect((await pass(h)).kind).toBe('ready');

    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(hosts.map((h) => h.records.recordedId)).toEqual(recorded);
    expect(hosts.map((h) => h.records.run.reconciled)).toEqual([undefined, undefined]);
  });

  it('waits for active and a public IPv4 without blocking, then reports the host provisioned', async () => {
    const app = host('staging-app-1');

    const seen = await untilReady(app);

    expect(seen).toEqual(['HostStarting', 'HostStarting', 'HostStarting', 'ready']);
    expect(app.records.status).toMatchObject({ providerId: app.records.recordedId, publicIPv4: expect.stringMatching(/^203\.0\.113\.\d+$/) });
    expect(app.records.condition('Provisioned')).toMatchObject({ status: 'True', reason: 'HostActive' });
  });
});

describe('create safety', () => {
  it('adopts the droplet after a crash right after the create call, with no duplicate', async () => {
    const app = host('staging-app-1');
    // the marker is recorded, the create goes out, and the process dies before recording the id
    app.records.createPendingSince = new Date(NOW).toISOString();
    const created = await provider.createHost({ name: 'shop-staging-app-1', region: 'nyc1', size: 's-2vcpu-4gb', image: 'ubuntu-24-04-x64', sshKeys: [key.id], tags: ['santokit', 'santokit-env-staging', ownershipTag(app.uid)] });

    await pass(app, NOW + 5_000);

    expect(app.records).toMatchObject({ recordedId: created.id, run: { created: true }, writtenRun: { created: true } });
    expect(app.records.createPendingSince).toBeUndefined();
    expect(app.records.events.map((e) => e.message)).toEqual([`found droplet ${created.id} (shop-staging-app-1) by its ownership tag and recorded it`]);
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(1);
  });

  it('does not create blindly when a create-pending marker without an answer finds no droplet, and says the way out', async () => {
    const app = host('staging-app-1');
    app.records.createPendingSince = new Date(NOW).toISOString();

    const early = await pass(app, NOW + 30_000);
    const earlyReason = app.records.condition('Provisioned')?.reason;
    const late = await pass(app, NOW + 11 * 60_000);

    expect(early).toMatchObject({ kind: 'requeue', settled: false });
    expect(earlyReason).toBe('CreatePending');
    expect(late).toMatchObject({ kind: 'requeue', settled: true });
    expect(app.records.condition('Stalled')).toMatchObject({ status: 'True', reason: 'CreateUnconfirmed' });
    expect(app.records.condition('Stalled')?.message).toContain('kubectl annotate infrahost <name> santokit.io/create-pending-');
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(0);
  });

  it('names both droplets and deletes neither when two carry the ownership tag', async () => {
    const app = host('staging-app-1');
    const owner = ownershipTag(app.uid);
    const a = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['santokit', owner] });
    const b = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['santokit', owner] });

    const out = await pass(app);

    expect(out).toMatchObject({ kind: 'requeue', settled: true });
    expect(app.records.condition('Stalled')).toMatchObject({ reason: 'DuplicateHosts', message: expect.stringContaining(`${a.id}, ${b.id}`) });
    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(sim.droplets()).toHaveLength(2);
  });

  it("never touches another environment's droplets", async () => {
    const app = host('staging-app-1');
    const prod = sim.seedDroplet({ name: 'shop-prod-app-1', tags: ['santokit', 'santokit-env-prod', 'santokit-owner-99999999-0000-4000-8000-000000000001'] });

    expect(await untilReady(app)).toContain('ready');

    const touched = sim.requests.filter((r) => r.method !== 'GET' && (r.path.includes(String(prod.id)) || JSON.stringify(r.body ?? {}).includes(String(prod.id))));
    expect(touched).toEqual([]);
    expect(sim.droplet(prod.id)?.tags).toEqual(['santokit', 'santokit-env-prod', 'santokit-owner-99999999-0000-4000-8000-000000000001']);
  });
});

describe('a droplet that already has the name', () => {
  it('is refused, not duplicated: a condition and a Warning Event name the droplet id', async () => {
    const app = host('staging-app-1');
    const sameName = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['santokit', 'santokit-env-staging'] });

    const out = await pass(app);
    const again = await pass(app);

    expect(out).toMatchObject({ kind: 'requeue', settled: true });
    expect(again.kind).toBe('requeue');
    expect(app.records.condition('Stalled')).toMatchObject({ status: 'True', reason: 'NameTaken', message: expect.stringContaining(`droplet ${sameName.id} is already named shop-staging-app-1`) });
    expect(app.records.condition('Stalled')?.message).toContain('adopt: byName');
    expect(app.records.events).toEqual([{ type: 'Warning', reason: 'NameTaken', message: expect.stringContaining(`droplet ${sameName.id}`) }]);
    expect(sim.requestsTo('POST', '/v2/droplets')).toEqual([]);
    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(sim.droplets().filter((d) => d.name === 'shop-staging-app-1')).toHaveLength(1);
  });

  it('is adopted under adopt: byName: recorded, given the ownership tag, and not recreated', async () => {
    const app = host('staging-app-1');
    app.adopt = 'byName';
    const sameName = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['firewall-web'] });

    const seen = await untilReady(app);

    expect(seen.at(-1)).toBe('ready');
    expect(app.records.recordedId).toBe(String(sameName.id));
    expect(app.records.run.created).toBeUndefined();
    expect(app.records.events[0]).toEqual({ type: 'Normal', reason: 'HostAdopted', message: `adopted droplet ${sameName.id} (shop-staging-app-1) by its name (adopt: byName); adding the ownership tag` });
    expect(sim.droplet(sameName.id)?.tags.sort()).toEqual(['firewall-web', 'santokit', 'santokit-env-staging', ownershipTag(app.uid)].sort());
    expect(sim.requestsTo('POST', '/v2/droplets')).toEqual([]);
  });

  it('is refused even under adopt: byName when several droplets share the name', async () => {
    const app = host('staging-app-1');
    app.adopt = 'byName';
    const a = sim.seedDroplet({ name: 'shop-staging-app-1' });
    const b = sim.seedDroplet({ name: 'SHOP-staging-app-1' });

    await pass(app);

    expect(app.records.condition('Stalled')).toMatchObject({ reason: 'NameTaken', message: expect.stringContaining(`droplets ${a.id}, ${b.id} are already named`) });
    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });
});

describe('drift', () => {
  it('reports a size mismatch and resizes in place: shutdown → resize (disk kept) → power on', async () => {
    const db = host('staging-db-1');
    sim.seedDroplet({ name: 'shop-staging-db-1', size: 's-2vcpu-4gb', tags: ['santokit', 'santokit-env-staging', ownershipTag(db.uid)] });

    const drift: string[] = [];
    const seen: string[] = [];
    for (let i = 0; i < 15 && seen.at(-1) !== 'ready'; i++) {
      const out = await pass(db);
      seen.push(out.kind);
      const d = db.records.condition('Drifted');
      if (d?.status === 'True') drift.push(`${d.reason}: ${d.message}`);
    }

    expect(seen.at(-1)).toBe('ready');
    expect(drift[0]).toBe('DriftReconciling: size is s-2vcpu-4gb, resizing to s-4vcpu-8gb');
    expect(db.records.condition('Drifted')).toMatchObject({ status: 'False', reason: 'NoDrift' });
    expect(db.records.run.reconciled).toBe(true);
    expect(db.records.resize).toEqual({ inProgress: false });
    expect(sim.droplets()[0]).toMatchObject({ size_slug: 's-4vcpu-8gb', status: 'active', disk: 80 });
    expect(sim.requestsTo('POST', /\/actions$/).map((r) => r.body)).toEqual([{ type: 'shutdown' }, { type: 'resize', size: 's-4vcpu-8gb', disk: false }, { type: 'power_on' }]);
    expect(db.records.events.map((e) => e.reason)).toContain('Resizing');
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(0);
  });

  it('powers the host back on and reports when the provider refuses a resize, without retrying it', async () => {
    const app = host('staging-app-1');
    sim.seedDroplet({ name: 'shop-staging-app-1', size: 's-2vcpu-4gb', tags: ['santokit', 'santokit-env-staging', ownershipTag(app.uid)] });
    app.spec = { ...app.spec, size: 's-1vcpu-2gb' };

    const seen: string[] = [];
    for (let i = 0; i < 15 && seen.at(-1) !== 'ready'; i++) seen.push((await pass(app)).kind);

    expect(seen.at(-1)).toBe('ready');
    expect(app.records.condition('Drifted')).toMatchObject({ status: 'True', reason: 'DriftReported', message: 'size is s-2vcpu-4gb; the resize to s-1vcpu-2gb was refused by the provider' });
    expect(app.records.resize).toEqual({ inProgress: false, failedSize: 's-1vcpu-2gb' });
    expect(app.records.events.filter((e) => e.reason === 'ResizeRefused')).toHaveLength(1);
    expect(sim.requestsTo('POST', /\/actions$/).map((r) => (r.body as { type: string }).type)).toEqual(['shutdown', 'resize', 'power_on']);
    expect(sim.droplets()[0]).toMatchObject({ size_slug: 's-2vcpu-4gb', status: 'active' });
  });

  it('adds missing tags in place and leaves foreign tags alone', async () => {
    const app = host('staging-app-1');
    app.spec = { ...app.spec, tags: ['team-a'] };
    const seeded = sim.seedDroplet({ name: 'shop-staging-app-1', tags: [ownershipTag(app.uid), 'firewall-web'] });

    expect(await pass(app)).toMatchObject({ kind: 'ready' });
    const reported = app.records.condition('Drifted');
    expect(await pass(app)).toMatchObject({ kind: 'ready' });

    expect(reported).toMatchObject({ status: 'True', reason: 'DriftReconciling', message: 'tags: adding santokit, santokit-env-staging, team-a' });
    expect(sim.droplet(seeded.id)?.tags.sort()).toEqual(['firewall-web', 'santokit', 'santokit-env-staging', ownershipTag(app.uid), 'team-a'].sort());
    expect(app.records.condition('Drifted')).toMatchObject({ status: 'False', reason: 'NoDrift' });
    expect(app.records.run.reconciled).toBe(true);
  });
});

describe('deletion', () => {
  async function finalize(h: Host, policy: 'Delete' | 'Orphan' = 'Delete'): Promise<{ requeueAfterMs: number } | undefined> {
    return finalizeManaged({
      mr: managed(h),
      policy,
      client: async () => client,
      status: h.records.status,
      generation: 1,
      record: async (e) => {
        h.records.events.push(e);
      },
      credentialsHint: 'restore the token',
      now: () => NOW,
    });
  }

  it('deletes by id and releases the finalizer only after the provider answers 404', async () => {
    const app = host('staging-app-1');
    await pass(app);
    const id = app.records.recordedId ?? '';
    sim.clearRequests();

    const results: Array<string> = [];
    for (let i = 0; i < 5; i++) {
      const wait = await finalize(app);
      results.push(wait === undefined ? 'release' : `wait ${app.records.condition('Deleted')?.status}`);
      if (wait === undefined) break;
    }

    expect(results).toEqual(['wait Unknown', 'release']);
    expect(sim.requestsTo('DELETE', /^\/v2\/droplets/).map((r) => `${r.path}${r.search}`)).toEqual([`/v2/droplets/${id}`]);
    expect(sim.requestsTo('GET', `/v2/droplets/${id}`).map((r) => r.status)).toEqual([200, 404]);
    expect(app.records.events.map((e) => e.reason)).toEqual(['HostCreated', 'HostDeleting', 'HostDeleted']);
  });

  it('says Deleted=False (a person must look) and deletes neither when two droplets carry the tag', async () => {
    const app = host('staging-app-1');
    const owner = ownershipTag(app.uid);
    sim.seedDroplet({ name: 'shop-staging-app-1', tags: [owner] });
    sim.seedDroplet({ name: 'shop-staging-app-1', tags: [owner] });

    expect(await finalize(app)).toEqual({ requeueAfterMs: 60_000 });

    expect(app.records.condition('Deleted')).toMatchObject({ status: 'False', reason: 'DuplicateHosts' });
    expect(app.records.condition('Stalled')).toMatchObject({ status: 'True', reason: 'DuplicateHosts' });
    expect(sim.requestsTo('DELETE', /^\/v2\/droplets/)).toEqual([]);
  });

  it('leaves the droplet running with deletionPolicy Orphan', async () => {
    const app = host('staging-app-1');
    await pass(app);

    expect(await finalize(app, 'Orphan')).toBeUndefined();

    expect(sim.requestsTo('DELETE', /^\/v2\/droplets/)).toEqual([]);
    expect(app.records.events.at(-1)).toMatchObject({ reason: 'HostOrphaned' });
  });
});
