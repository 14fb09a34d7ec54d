import { describe, expect, it } from 'vitest';
import { assessHost, createRequest, createRetryAt, decideDeletion, decideProvisioning, formatCreateFailure, parseCreateFailure, planResize, type HostSpec, type ProvisionInput } from './plan.ts';
import type { CloudHost } from './provider.ts';

const UID = '0b7c4a52-6d1e-4f0a-9c38-5e2f1d7a9b01';
const OWNER = `santokit-owner-${UID}`;
const NOW = Date.parse('2026-11-25T12:00:00Z');

const spec: HostSpec = { project: 'shop', environment: 'staging', host: 'app-1', region: 'nyc1', size: 's-2vcpu-4gb', image: 'ubuntu-24-04-x64', tags: ['web'] };

function host(overrides: Partial<CloudHost> = {}): CloudHost {
  return {
    id: '500000001',
    name: 'shop-staging-app-1',
    status: 'active',
    publicIPv4: '203.0.113.10',
    region: 'nyc1',
    size: 's-2vcpu-4gb',
    image: 'ubuntu-24-04-x64',
    tags: ['santokit', 'santokit-env-staging', OWNER, 'web'],
    locked: false,
    createdAt: '2026-11-25T11:00:00Z',
    ...overrides,
  };
}

function provision(overrides: Partial<ProvisionInput> = {}): ReturnType<typeof decideProvisioning> {
  return decideProvisioning({ spec, uid: UID, sshKeyIds: ['41'], owned: [], now: NOW, ...overrides });
}

describe('decideProvisioning', () => {
  it('creates with a deterministic request when nothing exists and nothing is recorded', () => {
    const decision = provision({ sshKeyIds: ['9', '41', '9'] });
    expect(decision).toEqual({
      kind: 'create',
      request: {
        name: 'shop-staging-app-1',
        region: 'nyc1',
        size: 's-2vcpu-4gb',
        image: 'ubuntu-24-04-x64',
        sshKeys: ['41', '9'],
        tags: ['santokit', 'santokit-env-staging', OWNER, 'web'],
      },
    });
    expect(provision({ sshKeyIds: ['41', '9'] })).toEqual(decision);
  });

  it('adopts the one host carrying the ownership tag and asks to record its id', () => {
    expect(provision({ owned: [host()], createPendingSince: '2026-11-25T11:59:00Z' })).toEqual({ kind: 'adopt', host: host(), record: true });
  });

  it('adopts without re-recording when the recorded id matches', () => {
    expect(provision({ owned: [host()], recordedId: '500000001' })).toEqual({ kind: 'adopt', host: host(), record: false });
  });

  it('never creates or deletes when several hosts carry the tag, and names them all', () => {
    const decision = provision({ owned: [host({ id: '500000010' }), host({ id: '500000002' })], recordedId: '500000002' });
    expect(decision).toMatchObject({ kind: 'blocked', reason: 'DuplicateHosts', ids: ['500000002', '500000010'] });
    if (decision.kind !== 'blocked') throw new Error('unreachable');
    expect(decision.message).toContain('500000002, 500000010');
  });

  it('refuses a tagged host that is not the recorded one', () => {
    expect(provision({ owned: [host({ id: '7' })], recordedId: '500000001' })).toMatchObject({ kind: 'blocked', reason: 'OwnershipMismatch', ids: ['500000001', '7'] });
  });

  it('waits for a recent create-pending marker instead of creating again', () => {
    expect(provision({ createPendingSince: '2026-11-25T11:58:00Z' })).toMatchObject({ kind: 'waitForCreate', requeueAfterMs: 15_000 });
  });

  it('stops and asks a person once the create-pending grace period is over', () => {
    const decision = provision({ createPendingSince: '2026-11-25T11:00:00Z' });
    expect(decision).toMatchObject({ kind: 'blocked', reason: 'CreateUnconfirmed', ids: [] });
    if (decision.kind !== 'blocked') throw new Error('unreachable');
    expect(decision.hint).toContain('shop-staging-app-1');
    expect(decision.hint).toContain('santokit.io/create-pending');
  });

  it('looks a recorded id up by id when the tag finds nothing, then adopts or blocks', () => {
    expect(provision({ recordedId: '500000001' })).toEqual({ kind: 'lookupRecorded', id: '500000001' });
    const untagged = host({ tags: ['web'] });
    expect(provision({ recordedId: '500000001', recordedLookup: untagged })).toEqual({ kind: 'adopt', host: untagged, record: false });
    expect(provision({ recordedId: '500000001', recordedLookup: null })).toMatchObject({ kind: 'blocked', reason: 'HostMissing', ids: ['500000001'] });
  });
});

describe('assessHost', () => {
  it('is ready with no drift when the host matches the spec', () => {
    expect(assessHost({ spec, uid: UID, host: host() })).toEqual({ ready: true, drift: [], tagsToAdd: [], resize: { kind: 'none' } });
  });

  it('waits while the host is new, or active without a public address', () => {
    expect(assessHost({ spec, uid: UID, host: host({ status: 'new', publicIPv4: undefined }) }).notReady?.reason).toBe('HostStarting');
    expect(assessHost({ spec, uid: UID, host: host({ publicIPv4: undefined }) }).notReady).toMatchObject({ reason: 'NoPublicAddress', requeueAfterMs: 5_000 });
  });

  it('reports region, image and SSH key drift without acting on it', () => {
    const result = assessHost({ spec, uid: UID, host: host({ region: 'ams3', image: 'ubuntu-22-04-x64' }), recordedSshKey: 'aa:bb', desiredSshKey: 'cc:dd' });
    expect(result.drift.map((d) => [d.field, d.remedy, d.actual, d.desired])).toEqual([
      ['image', 'reported', 'ubuntu-22-04-x64', 'ubuntu-24-04-x64'],
      ['region', 'reported', 'ams3', 'nyc1'],
      ['sshKey', 'reported', 'aa:bb', 'cc:dd'],
    ]);
    expect(result.ready).toBe(true);
    expect(result.resize).toEqual({ kind: 'none' });
  });

  it('reports a size mismatch and reconciles it in place, starting with a graceful shutdown', () => {
    const result = assessHost({ spec: { ...spec, size: 's-4vcpu-8gb' }, uid: UID, host: host() });
    expect(result.drift).toEqual([
      { field: 'size', desired: 's-4vcpu-8gb', actual: 's-2vcpu-4gb', remedy: 'inPlace', message: 'size is s-2vcpu-4gb, resizing to s-4vcpu-8gb' },
    ]);
    expect(result.resize).toEqual({ kind: 'shutdown' });
    expect(result.ready).toBe(false);
  });

  it('adds missing tags (including a lost ownership tag) and only reports stray santokit tags', () => {
    const result = assessHost({ spec, uid: UID, host: host({ tags: ['extra', 'santokit', 'santokit-env-prod'] }) });
    expect(result.tagsToAdd).toEqual(['santokit-env-staging', OWNER, 'web']);
    expect(result.drift).toHaveLength(1);
    expect(result.drift[0]).toMatchObject({ field: 'tags', remedy: 'inPlace' });
    expect(result.drift[0]?.message).toContain('unexpected santokit-env-prod (left in place)');
  });
});

describe('planResize', () => {
  const big = 's-4vcpu-8gb';

  it('walks shutdown → resize → power on → done', () => {
    expect(planResize(host(), big, { inProgress: false })).toEqual({ kind: 'shutdown' });
    expect(planResize(host(), big, { inProgress: true, action: { id: '1', type: 'shutdown', status: 'in-progress', hostId: '500000001' } })).toMatchObject({ kind: 'wait' });
    expect(planResize(host({ status: 'off' }), big, { inProgress: true, action: { id: '1', type: 'shutdown', status: 'completed', hostId: '500000001' } })).toEqual({ kind: 'resize', size: big });
    expect(planResize(host({ status: 'off', size: big }), big, { inProgress: true, action: { id: '2', type: 'resize', status: 'completed', hostId: '500000001' } })).toEqual({ kind: 'powerOn' });
    expect(planResize(host({ size: big }), big, { inProgress: true })).toEqual({ kind: 'none' });
  });

  it('falls back to a hard power-off when the graceful shutdown errored', () => {
    expect(planResize(host(), big, { inProgress: true, action: { id: '1', type: 'shutdown', status: 'errored', hostId: '500000001' } })).toEqual({ kind: 'powerOff' });
  });

  it('reports a refused resize, powers back on, and does not retry the same size', () => {
    expect(planResize(host({ status: 'off' }), big, { inProgress: true, action: { id: '2', type: 'resize', status: 'errored', hostId: '500000001' } })).toMatchObject({ kind: 'failed', size: big });
    expect(planResize(host({ status: 'off' }), big, { inProgress: true, failedSize: big })).toEqual({ kind: 'powerOn' });
    expect(planResize(host(), big, { inProgress: false, failedSize: big })).toEqual({ kind: 'none' });
    expect(assessHost({ spec: { ...spec, size: big }, uid: UID, host: host(), resize: { inProgress: false, failedSize: big } }).drift[0]?.remedy).toBe('failed');
  });

  it('waits while the provider reports the host locked', () => {
    expect(planResize(host({ locked: true }), big, { inProgress: false })).toMatchObject({ kind: 'wait' });
  });

  it('does not power on a host someone else powered off', () => {
    expect(planResize(host({ status: 'off' }), spec.size, { inProgress: false })).toEqual({ kind: 'none' });
    expect(assessHost({ spec, uid: UID, host: host({ status: 'off' }) }).notReady?.reason).toBe('PoweredOff');
  });
});

describe('decideDeletion', () => {
  const base = { policy: 'Delete' as const, uid: UID, owned: [], now: NOW };

  it('releases at once with deletionPolicy Orphan', () => {
    expect(decideDeletion({ ...base, policy: 'Orphan', owned: [host()] })).toMatchObject({ kind: 'release' });
  });

  it('looks up, deletes by id, and releases only after the provider says it is gone', () => {
    expect(decideDeletion({ ...base, owned: [host()] })).toEqual({ kind: 'lookup', id: '500000001' });
    expect(decideDeletion({ ...base, owned: [host()], lookup: host() })).toEqual({ kind: 'delete', id: '500000001', requeueAfterMs: 5_000 });
    expect(decideDeletion({ ...base, recordedId: '500000001', lookup: host({ status: 'off' }) })).toMatchObject({ kind: 'delete', id: '500000001' });
    expect(decideDeletion({ ...base, recordedId: '500000001', lookup: null })).toMatchObject({ kind: 'release' });
  });

  it('deletes nothing when several hosts carry the tag', () => {
    expect(decideDeletion({ ...base, owned: [host({ id: '3' }), host({ id: '2' })] })).toMatchObject({ kind: 'blocked', reason: 'DuplicateHosts', ids: ['2', '3'] });
  });

  it('waits out a recent create before releasing a resource that recorded nothing', () => {
    expect(decideDeletion({ ...base, createPendingSince: '2026-11-25T11:59:30Z' })).toMatchObject({ kind: 'wait' });
    expect(decideDeletion({ ...base })).toMatchObject({ kind: 'release' });
  });
});

describe('createRequest', () => {
  it('keeps user data only when given', () => {
    expect(createRequest(spec, UID, ['1'])).not.toHaveProperty('userData');
    expect(createRequest(spec, UID, ['1'], '#cloud-config\n').userData).toBe('#cloud-config\n');
  });
});

describe('creates answered with a server error, and equal names', () => {
  const marker = '2026-11-25T12:00:00Z';
  const failure = { at: '2026-11-25T12:00:01Z', status: 503, attempts: 1 };

  it('waits out the consistency window, then creates again (nothing carries the tag)', () => {
    expect(provision({ createPendingSince: marker, createFailure: failure, now: Date.parse(failure.at) + 4_000 })).toMatchObject({ kind: 'waitForCreate', requeueAfterMs: 6_000 });
    expect(provision({ createPendingSince: marker, createFailure: failure, now: Date.parse(failure.at) + 10_000 }).kind).toBe('create');
    // a host that appeared by its tag is adopted whatever was recorded
    expect(provision({ owned: [host()], createPendingSince: marker, createFailure: failure, now: Date.parse(failure.at) + 10_000 })).toMatchObject({ kind: 'adopt', record: true });
  });

  it('doubles the pause per attempt, capped at five minutes', () => {
    const at = Date.parse(failure.at);
    expect([1, 2, 3, 10].map((attempts) => createRetryAt({ ...failure, attempts }) - at)).toEqual([10_000, 20_000, 40_000, 300_000]);
  });

  it('treats a failure older than the marker as no answer (the unknown case)', () => {
    const stale = { ...failure, at: '2026-11-25T11:00:00Z' };
    expect(provision({ createPendingSince: marker, createFailure: stale, now: NOW + 11 * 60_000 })).toMatchObject({ kind: 'blocked', reason: 'CreateUnconfirmed' });
  });

  it('round-trips the failure annotation and ignores junk', () => {
    expect(parseCreateFailure(formatCreateFailure(failure))).toEqual(failure);
    expect(parseCreateFailure('{"at":1}')).toBeUndefined();
    expect(parseCreateFailure('not json')).toBeUndefined();
  });

  it('refuses a host that only has our name, and adopts it under adopt: byName', () => {
    const named = host({ id: '500000009', tags: ['web'] });
    expect(provision({ named: [named] })).toMatchObject({ kind: 'blocked', reason: 'NameTaken', ids: ['500000009'] });
    expect(provision({ named: [named], adopt: 'byName' })).toEqual({ kind: 'adopt', host: named, record: true, byName: true });
    expect(provision({ named: [named, host({ id: '500000010', tags: [] })], adopt: 'byName' })).toMatchObject({ kind: 'blocked', reason: 'NameTaken', ids: ['500000009', '500000010'] });
  });
});
