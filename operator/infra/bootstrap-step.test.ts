import { describe, expect, it } from 'vitest';
import type { InfraHostSpec, InfraHostStatus } from '../../core/api/resources.ts';
import type { RunRecord } from '../../core/infra/run.ts';
import { createLogger } from '../../core/log.ts';
import type { BootstrapOptions, BootstrapResult } from './bootstrap.ts';
import { BootstrapStep } from './bootstrap-step.ts';
import type { CloudHost } from './provider.ts';

/** The bootstrap step driven directly, with the SSH work replaced by a result the test hands over. */

const spec: InfraHostSpec = {
  project: 'shop',
  environment: 'staging',
  host: 'app-1',
  provider: 'digitalocean',
  region: 'nyc1',
  size: 's-1vcpu-1gb',
  image: 'ubuntu-24-04-x64',
  credentialsSecretRef: { name: 'do-token', key: 'token' },
  sshKey: { name: 'deploy', privateKeySecretRef: { name: 'deploy-ssh', key: 'k' } },
};
const host: CloudHost = { id: '500000001', name: 'shop-staging-app-1', status: 'active', publicIPv4: '203.0.113.1', region: 'nyc1', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: [], locked: false, createdAt: '' };
const ok: BootstrapResult = {
  ok: true,
  changed: true,
  hostKeyFingerprint: 'SHA256:abc',
  steps: [
    { step: 'ssh', ok: true, changed: false, code: 'ready' },
    { step: 'docker', ok: true, changed: true, code: 'installed' },
    { step: 'network', ok: true, changed: false, code: 'disabled' as never },
  ],
  commands: [],
};
const failed: BootstrapResult = {
  ok: false,
  changed: false,
  failure: { step: 'docker', code: 'docker_install_failed', message: 'apt-get exited 100' },
  steps: [
    { step: 'ssh', ok: true, changed: false, code: 'ready' },
    { step: 'docker', ok: false, changed: false, code: 'docker_install_failed', message: 'apt-get exited 100' },
  ],
  commands: [],
};

function harness(retryMs = 60_000) {
  const calls: BootstrapOptions[] = [];
  let finish: (r: BootstrapResult) => void = () => undefined;
  const step = new BootstrapStep({
    retryMs,
    ssh: { port: 2222, user: 'santokit-test' },
    bootstrap: (o) => {
      calls.push(o);
      return new Promise<BootstrapResult>((resolve) => (finish = resolve));
    },
  });
  const status: InfraHostStatus = {};
  const run: RunRecord = { request: 'r1', generation: 1 };
  const config = { token: 't', privateKey: 'PRIVATE', sshKeyName: 'deploy' };
  const input = () => ({ key: 'stk-shop/staging-app-1', spec, host, config, run, status, generation: 1, log: createLogger('test', 'silent') });
  return { step, calls, status, run, input, finish: (r: BootstrapResult) => finish(r) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('bootstrap step', () => {
  it('starts one job per run, polls it without settling, then records a ready host', async () => {
    const h = harness();

    const started = h.step.run(h.input());
    const polled = h.step.run(h.input());
    h.finish(ok);
    await tick();
    const done = h.step.run(h.input());

    expect(started).toEqual({ requeueAfterMs: 2_000, settled: false });
    expect(polled).toEqual({ requeueAfterMs: 2_000, settled: false });
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]?.target).toMatchObject({ host: '203.0.113.1', port: 2222, username: 'santokit-test', privateKey: 'PRIVATE' });
    expect(done).toEqual({ settled: true });
    expect(h.run).toMatchObject({ bootstrap: 'ok', reconciled: true });
    expect(h.status).toMatchObject({ phase: 'Ready', hostKeyFingerprint: 'SHA256:abc', steps: { ssh: 'ready', docker: 'installed' } });
    expect(h.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'HostReady' });
    // the same run does not bootstrap again
    expect(h.step.run(h.input())).toEqual({ settled: true });
    expect(h.calls).toHaveLength(1);
  });

  it('records a failed step, answers the run, and retries only after retryMs or in a new run', async () => {
    const h = harness(60_000);
    h.step.run(h.input());
    h.finish(failed);
    await tick();

    const recorded = h.step.run(h.input());
    const phase = h.status.phase;
    const notDue = h.step.run(h.input());
    h.step.newRun('stk-shop/staging-app-1');
    const again = h.step.run(h.input());

    expect(recorded).toEqual({ requeueAfterMs: 60_000, settled: true });
    expect(h.status.conditions?.find((c) => c.type === 'Bootstrapped')).toMatchObject({ status: 'False', reason: 'DockerInstallFailed' });
    expect(phase).toBe('Failed');
    expect(notDue.settled).toBe(true);
    expect(notDue.requeueAfterMs).toBeGreaterThan(50_000);
    expect(again).toEqual({ requeueAfterMs: 2_000, settled: false });
    expect(h.calls).toHaveLength(2);
  });

  it('stalls on a config_invalid bootstrap (retrying cannot help until the input changes)', async () => {
    const h = harness();
    h.step.run(h.input());
    h.finish({ ok: false, changed: false, failure: { step: 'config', code: 'config_invalid', message: 'the SSH private key cannot be parsed' }, steps: [], commands: [] });
    await tick();

    expect(h.step.run(h.input())).toEqual({ settled: true });
    expect(h.status.steps).toEqual({ config: 'config_invalid' });
    expect(h.status.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'ConfigInvalid' });
  });
});
