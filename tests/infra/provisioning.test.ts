import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigitalOceanProvider } from '../../operator/infra/digitalocean.ts';
import { CloudRequestRejectedError } from '../../operator/infra/errors.ts';
import { loadDesiredHosts, ownershipTag, toInfraHostSpec, type DesiredHost } from '../../core/infra/hosts.ts';
import {
  assessHost,
  decideDeletion,
  decideProvisioning,
  type HostAssessment,
  type HostSpec,
  type ProvisionDecision,
  type ResizeState,
} from '../../operator/infra/plan.ts';
import type { CloudHost, HostAction } from '../../operator/infra/provider.ts';
import { startDoSimulator, type DoSimulator } from '../support/do-simulator.ts';
import { simulatedProvider } from './helpers.ts';

/**
 * The decision logic of operator/infra/plan.ts driven against the DigitalOcean simulator. The
 * small `Glue` below is what the InfraHost reconciler does with each decision (minus Kubernetes):
 * it is deliberately thin, so these tests pin the behaviour the reconciler inherits.
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

/** What the reconciler keeps on the InfraHost between passes (annotations + status). */
interface Recorded {
  recordedId?: string;
  createPendingSince?: string;
  resize: ResizeState;
}

class Glue {
  readonly records = new Map<string, Recorded>();
  constructor(
    readonly provider: DigitalOceanProvider,
    readonly sshKeyIds: readonly string[],
  ) {}

  record(name: string): Recorded {
    let r = this.records.get(name);
    if (r === undefined) {
      r = { resize: { inProgress: false } };
      this.records.set(name, r);
    }
    return r;
  }

  /** One provisioning pass: list by ownership tag → decide → act → record. */
  async provision(name: string, spec: HostSpec, uid: string, now = NOW): Promise<{ decision: ProvisionDecision; host?: CloudHost }> {
    const rec = this.record(name);
    const input = { spec, uid, sshKeyIds: this.sshKeyIds, owned: await this.provider.listHostsByTag(ownershipTag(uid)), now, ...pick(rec) };
    let decision = decideProvisioning(input);
    if (decision.kind === 'lookupRecorded') decision = decideProvisioning({ ...input, recordedLookup: (await this.provider.getHost(decision.id)) ?? null });
    switch (decision.kind) {
      case 'create': {
        rec.createPendingSince = new Date(now).toISOString();
        const host = await this.provider.createHost(decision.request);
        rec.recordedId = host.id;
        delete rec.createPendingSince;
        return { decision, host };
      }
      case 'adopt':
        if (decision.record) {
          rec.recordedId = decision.host.id;
          delete rec.createPendingSince;
        }
        return { decision, host: decision.host };
      default:
        return { decision };
    }
  }

  /** One in-place pass: assess → add tags → next resize step. */
  async reconcile(name: string, spec: HostSpec, uid: string, host: CloudHost): Promise<HostAssessment> {
    const rec = this.record(name);
    const action = rec.resize.action === undefined ? undefined : await this.provider.getAction(rec.resize.action.id);
    const assessment = assessHost({ spec, uid, host, resize: { ...rec.resize, ...(action === undefined ? {} : { action }) } });
    if (assessment.tagsToAdd.length > 0) await this.provider.tagHost(host.id, assessment.tagsToAdd);
    const step = assessment.resize;
    const started = async (a: Promise<HostAction>, inProgress: boolean): Promise<void> => {
      rec.resize = { ...rec.resize, inProgress, action: await a };
    };
    switch (step.kind) {
      case 'shutdown':
        await started(this.provider.shutdownHost(host.id), true);
        break;
      case 'powerOff':
        await started(this.provider.powerOffHost(host.id), true);
        break;
      case 'resize':
        try {
          await started(this.provider.resizeHost(host.id, step.size), true);
        } catch (err) {
          if (!(err instanceof CloudRequestRejectedError)) throw err;
          rec.resize = { inProgress: true, failedSize: step.size };
        }
        break;
      case 'failed':
        rec.resize = { inProgress: true, failedSize: step.size };
        break;
      case 'powerOn':
        await started(this.provider.powerOnHost(host.id), true);
        break;
      case 'none':
        if (host.status === 'active') rec.resize = rec.resize.failedSize === undefined ? { inProgress: false } : { inProgress: false, failedSize: rec.resize.failedSize };
        break;
      case 'wait':
        break;
    }
    return assessment;
  }
}

function pick(rec: Recorded): { recordedId?: string; createPendingSince?: string } {
  return {
    ...(rec.recordedId === undefined ? {} : { recordedId: rec.recordedId }),
    ...(rec.createPendingSince === undefined ? {} : { createPendingSince: rec.createPendingSince }),
  };
}

function specOf(h: DesiredHost): HostSpec {
  const s = toInfraHostSpec(h);
  return { project: s.project, environment: s.environment, host: s.host, region: s.region, size: s.size, image: s.image, tags: s.tags };
}

let sim: DoSimulator;
let provider: DigitalOceanProvider;
let glue: Glue;
let desired: DesiredHost[];

beforeEach(async () => {
  sim = await startDoSimulator({ activateAfterPolls: 2 });
  const key = sim.seedSshKey('deploy', PUBLIC_KEY);
  provider = simulatedProvider(sim).provider;
  glue = new Glue(provider, [String(key.id)]);
  desired = loadDesiredHosts(HOSTS_YAML, { project: 'shop' });
  sim.clearRequests();
});

afterEach(async () => {
  await sim.close();
});

function uidOf(h: DesiredHost): string {
  const uid = UIDS[h.resourceName];
  if (uid === undefined) throw new Error(`no uid for ${h.resourceName}`);
  return uid;
}

describe('provisioning from nothing', () => {
  it('sends exactly these create requests, in host order, and the decisions are identical on a re-run', async () => {
    const decide = (): ProvisionDecision[] => desired.map((h) => decideProvisioning({ spec: specOf(h), uid: uidOf(h), sshKeyIds: glue.sshKeyIds, owned: [], now: NOW }));
    expect(decide()).toEqual(decide());

    for (const h of desired) await glue.provision(h.resourceName, specOf(h), uidOf(h));

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
  });

  it('creates nothing on a second pass: every host is adopted and unchanged', async () => {
    for (const h of desired) await glue.provision(h.resourceName, specOf(h), uidOf(h));
    sim.clearRequests();

    const second = [];
    for (const h of desired) second.push(await glue.provision(h.resourceName, specOf(h), uidOf(h)));

    expect(second.map((s) => [s.decision.kind, s.decision.kind === 'adopt' ? s.decision.record : undefined])).toEqual([
      ['adopt', false],
      ['adopt', false],
    ]);
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(0);
  });

  it('waits for active and a public IPv4 without blocking, then reports the host ready', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const created = await glue.provision(app.resourceName, specOf(app), uidOf(app));
    expect(created.host).toMatchObject({ status: 'new', publicIPv4: undefined });

    const reasons: string[] = [];
    for (let pass = 0; pass < 5; pass++) {
      const { host } = await glue.provision(app.resourceName, specOf(app), uidOf(app));
      if (host === undefined) throw new Error('lost the host');
      const assessment = await glue.reconcile(app.resourceName, specOf(app), uidOf(app), host);
      if (assessment.ready) {
        expect(host.publicIPv4).toMatch(/^203\.0\.113\.\d+$/);
        break;
      }
      reasons.push(assessment.notReady?.reason ?? '');
    }
    expect(reasons).toEqual(['HostStarting', 'HostStarting']);
  });
});

describe('create safety', () => {
  it('adopts the droplet after a crash right after the create call, with no duplicate', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const uid = uidOf(app);
    const decision = decideProvisioning({ spec: specOf(app), uid, sshKeyIds: glue.sshKeyIds, owned: [], now: NOW });
    if (decision.kind !== 'create') throw new Error(`expected create, got ${decision.kind}`);
    // the marker is recorded, the create goes out, and the process dies before recording the id
    glue.record(app.resourceName).createPendingSince = new Date(NOW).toISOString();
    const created = await provider.createHost(decision.request);

    const restarted = await glue.provision(app.resourceName, specOf(app), uid, NOW + 5_000);

    expect(restarted.decision).toMatchObject({ kind: 'adopt', record: true, host: { id: created.id } });
    expect(glue.record(app.resourceName)).toEqual({ recordedId: created.id, resize: { inProgress: false } });
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(1);
  });

  it('does not create blindly when a create-pending marker finds no droplet', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    glue.record(app.resourceName).createPendingSince = new Date(NOW).toISOString();

    const early = await glue.provision(app.resourceName, specOf(app), uidOf(app), NOW + 30_000);
    const late = await glue.provision(app.resourceName, specOf(app), uidOf(app), NOW + 11 * 60_000);

    expect(early.decision.kind).toBe('waitForCreate');
    expect(late.decision).toMatchObject({ kind: 'blocked', reason: 'CreateUnconfirmed' });
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(0);
  });

  it('names both droplets and deletes neither when two carry the ownership tag', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const owner = ownershipTag(uidOf(app));
    const a = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['santokit', owner] });
    const b = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['santokit', owner] });

    const { decision } = await glue.provision(app.resourceName, specOf(app), uidOf(app));

    expect(decision).toMatchObject({ kind: 'blocked', reason: 'DuplicateHosts', ids: [String(a.id), String(b.id)] });
    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(sim.droplets()).toHaveLength(2);
  });

  it("never touches another env's droplets or a droplet that merely has the same name", async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const prod = sim.seedDroplet({ name: 'shop-prod-app-1', tags: ['santokit', 'santokit-env-prod', 'santokit-owner-99999999-0000-4000-8000-000000000001'] });
    const sameName = sim.seedDroplet({ name: 'shop-staging-app-1', tags: ['santokit', 'santokit-env-staging'] });

    const first = await glue.provision(app.resourceName, specOf(app), uidOf(app));
    if (first.host === undefined) throw new Error('no host created');
    await glue.reconcile(app.resourceName, specOf(app), uidOf(app), first.host);
    await glue.provision(app.resourceName, specOf(app), uidOf(app));

    expect(first.decision.kind).toBe('create');
    expect(sim.droplets().filter((d) => d.name === 'shop-staging-app-1')).toHaveLength(2);
    const touched = sim.requests.filter((r) => r.method !== 'GET' && (r.path.includes(String(prod.id)) || r.path.includes(String(sameName.id)) || JSON.stringify(r.body ?? {}).includes(String(sameName.id))));
    expect(touched).toEqual([]);
    expect(sim.droplet(prod.id)?.tags).toEqual(['santokit', 'santokit-env-prod', 'santokit-owner-99999999-0000-4000-8000-000000000001']);
  });
});

describe('drift', () => {
  it('reports a size mismatch and resizes in place: shutdown → resize (disk kept) → power on', async () => {
    const [, db] = desired;
    if (db === undefined) throw new Error('no host');
    const uid = uidOf(db);
    sim.seedDroplet({ name: 'shop-staging-db-1', size: 's-2vcpu-4gb', tags: ['santokit', 'santokit-env-staging', ownershipTag(uid)] });

    const drift: string[] = [];
    let ready = false;
    for (let pass = 0; pass < 15 && !ready; pass++) {
      const { host } = await glue.provision(db.resourceName, specOf(db), uid);
      if (host === undefined) throw new Error('lost the host');
      const assessment = await glue.reconcile(db.resourceName, specOf(db), uid, host);
      drift.push(...assessment.drift.map((d) => `${d.field}:${d.remedy}:${d.actual}->${d.desired}`));
      ready = assessment.ready;
    }

    expect(ready).toBe(true);
    expect(drift[0]).toBe('size:inPlace:s-2vcpu-4gb->s-4vcpu-8gb');
    expect(sim.droplets()[0]).toMatchObject({ size_slug: 's-4vcpu-8gb', status: 'active', disk: 80 });
    expect(sim.requestsTo('POST', /\/actions$/).map((r) => r.body)).toEqual([{ type: 'shutdown' }, { type: 'resize', size: 's-4vcpu-8gb', disk: false }, { type: 'power_on' }]);
    expect(sim.requestsTo('POST', '/v2/droplets')).toHaveLength(0);
  });

  it('powers the host back on and reports when the provider refuses a resize, without retrying it', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const uid = uidOf(app);
    sim.seedDroplet({ name: 'shop-staging-app-1', size: 's-2vcpu-4gb', tags: ['santokit', 'santokit-env-staging', ownershipTag(uid)] });
    const smaller: HostSpec = { ...specOf(app), size: 's-1vcpu-2gb' };

    let last: HostAssessment | undefined;
    for (let pass = 0; pass < 15 && last?.ready !== true; pass++) {
      const { host } = await glue.provision(app.resourceName, smaller, uid);
      if (host === undefined) throw new Error('lost the host');
      last = await glue.reconcile(app.resourceName, smaller, uid, host);
    }

    expect(last?.ready).toBe(true);
    expect(last?.drift).toEqual([expect.objectContaining({ field: 'size', remedy: 'failed', actual: 's-2vcpu-4gb', desired: 's-1vcpu-2gb' })]);
    expect(sim.requestsTo('POST', /\/actions$/).map((r) => (r.body as { type: string }).type)).toEqual(['shutdown', 'resize', 'power_on']);
    expect(sim.droplets()[0]).toMatchObject({ size_slug: 's-2vcpu-4gb', status: 'active' });
  });

  it('adds missing tags in place and leaves foreign tags alone', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const uid = uidOf(app);
    const seeded = sim.seedDroplet({ name: 'shop-staging-app-1', tags: [ownershipTag(uid), 'firewall-web'] });

    const { host } = await glue.provision(app.resourceName, { ...specOf(app), tags: ['team-a'] }, uid);
    if (host === undefined) throw new Error('lost the host');
    const first = await glue.reconcile(app.resourceName, { ...specOf(app), tags: ['team-a'] }, uid, host);

    expect(first.tagsToAdd).toEqual(['santokit', 'santokit-env-staging', 'team-a']);
    expect(sim.droplet(seeded.id)?.tags.sort()).toEqual(['firewall-web', 'santokit', 'santokit-env-staging', ownershipTag(uid), 'team-a'].sort());
    const again = await provider.getHost(String(seeded.id));
    if (again === undefined) throw new Error('lost the host');
    expect(assessHost({ spec: { ...specOf(app), tags: ['team-a'] }, uid, host: again }).drift).toEqual([]);
  });
});

describe('deletion', () => {
  it('deletes by id and releases the finalizer only after the provider answers 404', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const uid = uidOf(app);
    const { host } = await glue.provision(app.resourceName, specOf(app), uid);
    if (host === undefined) throw new Error('no host');
    sim.clearRequests();

    const kinds: string[] = [];
    for (let pass = 0; pass < 5; pass++) {
      const owned = await provider.listHostsByTag(ownershipTag(uid));
      const base = { policy: 'Delete' as const, uid, recordedId: host.id, owned, now: NOW };
      let decision = decideDeletion(base);
      if (decision.kind === 'lookup') decision = decideDeletion({ ...base, lookup: (await provider.getHost(decision.id)) ?? null });
      kinds.push(decision.kind);
      if (decision.kind === 'delete') await provider.deleteHost(decision.id);
      if (decision.kind === 'release') break;
    }

    expect(kinds).toEqual(['delete', 'release']);
    expect(sim.requestsTo('DELETE', /^\/v2\/droplets/).map((r) => `${r.path}${r.search}`)).toEqual([`/v2/droplets/${host.id}`]);
    expect(sim.requestsTo('GET', `/v2/droplets/${host.id}`).map((r) => r.status)).toEqual([200, 404]);
  });

  it('leaves the droplet running with deletionPolicy Orphan', async () => {
    const [app] = desired;
    if (app === undefined) throw new Error('no host');
    const { host } = await glue.provision(app.resourceName, specOf(app), uidOf(app));
    if (host === undefined) throw new Error('no host');

    const decision = decideDeletion({ policy: 'Orphan', uid: uidOf(app), recordedId: host.id, owned: [host], now: NOW });

    expect(decision.kind).toBe('release');
    expect(sim.requestsTo('DELETE', /^\/v2\/droplets/)).toEqual([]);
  });
});
