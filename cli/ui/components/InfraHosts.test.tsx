import { describe, expect, it } from 'vitest';
import type { InfraHost, InfraHostStatus } from '../../../core/api/resources.ts';
import { ANNOTATION_RUN, formatRun, type RunRecord } from '../../../core/infra/run.ts';
import { InfraHosts } from './InfraHosts.tsx';
import { gaveUp, hostProgress, InfraHostsStore } from './InfraHostsStore.ts';
import { renderPlain, tick } from './test-support.tsx';

const RUN = { requestId: 'req-2', generation: 1 };
const T = '2025-01-01T00:00:00Z';

type Obj = InfraHost & { metadata: { name: string; annotations?: Record<string, string> } };

/** An InfraHost as the watch delivers it: the run record of `run`, and a status. */
function host(name: string, run: Omit<RunRecord, 'generation'> | undefined, status: InfraHostStatus = {}, bootstrap: InfraHost['spec']['bootstrap'] = { tailscale: { authKeySecretRef: { name: 'ts', key: 'authkey' } } }): Obj {
  return {
    apiVersion: 'santokit.io/v1alpha1',
    kind: 'InfraHost',
    metadata: { name, namespace: 'stk-p', generation: 1, ...(run === undefined ? {} : { annotations: { [ANNOTATION_RUN]: formatRun({ ...run, generation: 1 }) } }) },
    spec: {
      project: 'p',
      environment: 'staging',
      host: name.replace(/^staging-/, ''),
      provider: 'digitalocean',
      region: 'nyc1',
      size: 's-1vcpu-1gb',
      image: 'ubuntu-24-04-x64',
      credentialsSecretRef: { name: 'do-token', key: 'token' },
      sshKey: { generate: true },
      bootstrap,
    },
    status,
  };
}

const cond = (type: string, status: 'True' | 'False' | 'Unknown', reason = type, message = '') => ({ type, status, reason, message, lastTransitionTime: T });

const provisioning: InfraHostStatus = { phase: 'Provisioning', conditions: [cond('Ready', 'Unknown', 'Progressing'), cond('Provisioned', 'Unknown', 'CreatePending')] };
const waitingForSsh: InfraHostStatus = { phase: 'WaitingForSSH', providerId: '101', conditions: [cond('Ready', 'Unknown', 'Bootstrapping'), cond('Provisioned', 'True', 'HostActive')] };
const ready: InfraHostStatus = {
  phase: 'Ready',
  providerId: '101',
  steps: { ssh: 'ready', docker: 'installed', network: 'joined' },
  conditions: [cond('Ready', 'True', 'HostReady'), cond('Provisioned', 'True', 'HostActive'), cond('Bootstrapped', 'True', 'Bootstrapped')],
};
const dockerFailed: InfraHostStatus = {
  phase: 'Failed',
  providerId: '102',
  steps: { ssh: 'ready', docker: 'docker_install_failed', network: 'not_run' },
  conditions: [
    cond('Ready', 'False', 'DockerInstallFailed', 'docker_install_failed: apt-get exited 100'),
    cond('Provisioned', 'True', 'HostActive'),
    cond('Bootstrapped', 'False', 'DockerInstallFailed', 'docker_install_failed: apt-get exited 100'),
  ],
};

/** The spinner turns on its own clock: frames compare with it at its first position. */
const still = (frame: string | undefined) => (frame ?? '').replace(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/g, '⠋').trimEnd();

const stages = (p: { stages: ReadonlyArray<{ name: string; state: string }> }) => p.stages.map((s) => `${s.name}:${s.state}`).join(' ');

describe('hostProgress', () => {
  it('reads a host the operator has not taken up in this run as provisioning, whatever its old status says', () => {
    const p = hostProgress(host('staging-app-1', { request: 'req-1', bootstrap: 'ok', handled: true }, ready), RUN);
    expect(stages(p)).toBe('provisioning:running ssh:pending docker:pending tailscale:pending ready:pending');
    expect(p.settled).toBe(false);
  });

  it('puts the spinner on ssh once the droplet is active, and ignores steps from an earlier run', () => {
    const p = hostProgress(host('staging-app-1', { request: 'req-2' }, { ...waitingForSsh, steps: { ssh: 'ready', docker: 'present', network: 'present' } }), RUN);
    expect(stages(p)).toBe('provisioning:done ssh:running docker:pending tailscale:pending ready:pending');
  });

  it('follows the step the operator names while the bootstrap runs: the steps before it passed', () => {
    const at = (bootstrapStage: InfraHostStatus['bootstrapStage'], bootstrap?: InfraHost['spec']['bootstrap']) =>
      stages(hostProgress(host('staging-app-1', { request: 'req-2' }, { ...waitingForSsh, phase: 'Bootstrapping', bootstrapStage }, bootstrap), RUN));
    expect(at('ssh')).toBe('provisioning:done ssh:running docker:pending tailscale:pending ready:pending');
    expect(at('docker')).toBe('provisioning:done ssh:done docker:running tailscale:pending ready:pending');
    expect(at('network')).toBe('provisioning:done ssh:done docker:done tailscale:running ready:pending');
    expect(at('network', { docker: { enabled: false }, tailscale: { authKeySecretRef: { name: 'ts', key: 'authkey' } } })).toBe('provisioning:done ssh:done docker:skipped tailscale:running ready:pending');
    // A stage left over from another run means nothing to this one.
    expect(stages(hostProgress(host('staging-app-1', { request: 'req-1' }, { ...waitingForSsh, bootstrapStage: 'network' }), RUN))).toBe('provisioning:running ssh:pending docker:pending tailscale:pending ready:pending');
  });

  it('marks switched-off stages as skipped from the start', () => {
    const p = hostProgress(host('staging-app-1', { request: 'req-2' }, waitingForSsh, { docker: { enabled: false } }), RUN);
    expect(stages(p)).toBe('provisioning:done ssh:running docker:skipped tailscale:skipped ready:pending');
  });

  it('settles a ready host with every stage ticked', () => {
    const p = hostProgress(host('staging-app-1', { request: 'req-2', created: true, bootstrap: 'ok', handled: true }, ready), RUN);
    expect(stages(p)).toBe('provisioning:done ssh:done docker:done tailscale:done ready:done');
    expect(p).toMatchObject({ settled: true });
    expect(p.failure).toBeUndefined();
  });

  it('settles a failed bootstrap on the failing step with its code, the message once', () => {
    const p = hostProgress(host('staging-db-1', { request: 'req-2', created: true, bootstrap: 'failed', handled: true }, dockerFailed), RUN);
    expect(stages(p)).toBe('provisioning:done ssh:done docker:failed tailscale:pending ready:pending');
    expect(p.failure).toEqual({ code: 'docker_install_failed', message: 'apt-get exited 100' });
  });

  it('puts a cloud failure on provisioning with the condition reason as its code', () => {
    const status: InfraHostStatus = { phase: 'Failed', conditions: [cond('Ready', 'False', 'CloudUnavailable', 'DigitalOcean answered 503'), cond('Stalled', 'True', 'CloudUnavailable')] };
    const p = hostProgress(host('staging-app-1', { request: 'req-2', handled: true }, status), RUN);
    expect(stages(p)).toBe('provisioning:failed ssh:pending docker:pending tailscale:pending ready:pending');
    expect(p.failure).toEqual({ code: 'CloudUnavailable', message: 'DigitalOcean answered 503' });
  });

  it('marks the stage at work failed when stk stops waiting', () => {
    const p = gaveUp(hostProgress(host('staging-app-1', { request: 'req-2' }, waitingForSsh), RUN), 'staging-app-1', { code: 'Timeout', message: 'no answer within 5 s' });
    expect(stages(p)).toBe('provisioning:done ssh:failed docker:pending tailscale:pending ready:pending');
    expect(p.settled).toBe(true);
  });
});

describe('InfraHosts', () => {
  const hosts = [
    { key: 'staging-db-1', label: 'db-1' },
    { key: 'staging-app-1', label: 'app-1' },
  ];
  const title = 'stk infra up: 2 hosts of p at HEAD (commit 0123456789ab)';

  it('starts with every host provisioning', async () => {
    const now = 1_000;
    const store = new InfraHostsStore(hosts, 1_000, () => now);
    const { lastFrame, unmount } = renderPlain(<InfraHosts title={title} store={store} clock={() => now} />);
    await tick();
    expect(still(lastFrame())).toMatchInlineSnapshot(`
      "stk infra up: 2 hosts of p at HEAD (commit 0123456789ab)
      app-1  ⠋ provisioning · ssh · docker · tailscale · ready 0ms
      db-1   ⠋ provisioning · ssh · docker · tailscale · ready 0ms"
    `);
    unmount();
  });

  it('moves a host to ssh mid-bootstrap, then prints a failed host once with its code and the ready one with every tick', async () => {
    let now = 1_000;
    const store = new InfraHostsStore(hosts, 1_000, () => now);
    const { lastFrame, unmount } = renderPlain(<InfraHosts title={title} store={store} clock={() => now} />);

    // Mid-bootstrap: app-1 waits for SSH, db-1 still provisioning
    now = 4_200;
    store.update(hostProgress(host('staging-app-1', { request: 'req-2', created: true }, waitingForSsh), RUN));
    store.update(hostProgress(host('staging-db-1', { request: 'req-2' }, provisioning), RUN));
    await tick();
    expect(still(lastFrame())).toMatchInlineSnapshot(`
      "stk infra up: 2 hosts of p at HEAD (commit 0123456789ab)
      app-1  ✔ provisioning ⠋ ssh · docker · tailscale · ready 3.2s
      db-1   ⠋ provisioning · ssh · docker · tailscale · ready 3.2s"
    `);

    // db-1 fails at Docker: its row is final, app-1 keeps going
    now = 31_000;
    store.update(hostProgress(host('staging-db-1', { request: 'req-2', created: true, bootstrap: 'failed', handled: true }, dockerFailed), RUN));
    await tick();
    expect(still(lastFrame())).toMatchInlineSnapshot(`
      "stk infra up: 2 hosts of p at HEAD (commit 0123456789ab)
      db-1   ✔ provisioning ✔ ssh ✘ docker docker_install_failed: apt-get exited 100 30.0s
      app-1  ✔ provisioning ⠋ ssh · docker · tailscale · ready 30.0s"
    `);

    // app-1 is ready; nothing is live any more
    now = 42_500;
    store.update(hostProgress(host('staging-app-1', { request: 'req-2', created: true, bootstrap: 'ok', handled: true }, ready), RUN));
    store.finish();
    await tick();
    expect(still(lastFrame())).toMatchInlineSnapshot(`
      "stk infra up: 2 hosts of p at HEAD (commit 0123456789ab)
      db-1   ✔ provisioning ✔ ssh ✘ docker docker_install_failed: apt-get exited 100 30.0s
      app-1  ✔ provisioning ✔ ssh ✔ docker ✔ tailscale ✔ ready 41.5s"
    `);
    // A settled row is final: a later reading of that host changes nothing
    const before = store.getSnapshot();
    store.update(hostProgress(host('staging-db-1', { request: 'req-2' }, provisioning), RUN));
    expect(store.getSnapshot()).toBe(before);
    unmount();
  });
});
