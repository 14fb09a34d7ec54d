import { afterEach, describe, expect, it } from 'vitest';
import { formatTable } from '../../cli/output.ts';
import { API_VERSION } from '../../core/api/resources.ts';
import { kubectl, expectExit } from '../support/cluster.ts';
import { commandLines, HOSTS_YAML, World, type Obj } from './world.ts';

const ONE_HOST = HOSTS_YAML.replace(/\n {4}db-1:.*\n/, '\n');

function condition(obj: Obj, type: string): { status: string; reason: string; message: string } | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

/** Per-host failures: each names its step, the others carry on, and the exit code says which kind. */
describe('stk infra up: failures', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('reports docker_install_failed for one host while the other becomes ready, and exits 10', async () => {
    // Given two fresh hosts, and apt-get failing to install on db-1
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    const db = await w.host('staging', 'db-1');
    await db.sshd?.script('apt-get', [{ exitCode: 0 }, { exitCode: 100, stderr: 'E: Unable to locate package docker.io\n' }]);
    await w.commitHosts(HOSTS_YAML);

    // When stk infra up runs
    const result = await w.infra(['up', '--env', 'staging']);

    // Then the table names the failed step, the other host is fine, and the exit code is 10
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(10);
    const app = await w.infraHost('staging-app-1');
    const dbHost = await w.infraHost('staging-db-1');
    expect(result.stdout).toBe(
      `${formatTable(['HOST', 'DROPLET', 'IP', 'ACTION', 'BOOTSTRAP'], [
        ['app-1', app.status?.providerId ?? '', app.status?.publicIPv4 ?? '', 'created', 'ok'],
        ['db-1', dbHost.status?.providerId ?? '', dbHost.status?.publicIPv4 ?? '', 'created', 'docker_install_failed'],
      ])}\n`,
    );
    expect(result.stderr).toContain('db-1: docker_install_failed: "DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 install -y docker.io" exited 100: E: Unable to locate package docker.io');
    expect(dbHost.status?.steps).toEqual({ ssh: 'ready', docker: 'docker_install_failed', network: 'not_run' });
    expect(dbHost.status?.phase).toBe('Failed');
    expect(condition(dbHost, 'Bootstrapped')).toMatchObject({ status: 'False', reason: 'DockerInstallFailed' });
    expect(condition(dbHost, 'Ready')).toMatchObject({ status: 'False', reason: 'DockerInstallFailed' });
    expect(condition(app, 'Ready')?.status).toBe('True');
    // Tailscale was never tried on the failed host
    expect((await commandLines(db.sshd!)).filter((c) => c.startsWith('tailscale') || c.startsWith('curl'))).toEqual([]);
  }, 120_000);

  it('reports ssh_failed, not a Docker error, when the host never accepts SSH, and exits 3', async () => {
    // Given a host whose address has no SSH server, and a short readiness deadline
    const w = (world = await World.start({ sshReadyTimeoutSeconds: 4 }));
    await w.host('staging', 'app-1', 'unreachable');
    await w.commitHosts(ONE_HOST);

    // When stk infra up runs
    const result = await w.infra(['up', '--env', 'staging']);

    // Then bootstrap stopped at the SSH step and nothing else ran
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(3);
    const app = await w.infraHost('staging-app-1');
    expect(result.stdout).toBe(`${formatTable(['HOST', 'DROPLET', 'IP', 'ACTION', 'BOOTSTRAP'], [['app-1', app.status?.providerId ?? '', app.status?.publicIPv4 ?? '', 'created', 'ssh_failed']])}\n`);
    expect(app.status?.steps).toEqual({ ssh: 'ssh_failed', docker: 'not_run', network: 'not_run' });
    expect(condition(app, 'SSHReady')).toMatchObject({ status: 'False', reason: 'SSHFailed' });
    expect(condition(app, 'SSHReady')?.message).toMatch(/SSH not ready within 4 s: TCP 127\.0\.0\.\d+:\d+ not reachable \(ECONNREFUSED\)/);
    expect(condition(app, 'Bootstrapped')).toMatchObject({ status: 'False', reason: 'SSHFailed' });
    expect(condition(app, 'Provisioned')?.status).toBe('True');
    expect(app.status?.hostKeyFingerprint).toBeUndefined();
  }, 120_000);

  it('never calls tailscale up when the Tailscale install fails', async () => {
    // Given a fresh host whose Tailscale installer download fails
    const w = (world = await World.start());
    const app = await w.host('staging', 'app-1');
    await app.sshd?.script('curl', [{ exitCode: 22, stderr: 'curl: (22) The requested URL returned error: 503\n' }]);
    await w.commitHosts(ONE_HOST);

    // When stk infra up runs
    const result = await w.infra(['up', '--env', 'staging']);

    // Then the network step failed at install, Docker was fine, and the join was never attempted
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(3);
    const obj = await w.infraHost('staging-app-1');
    expect(obj.status?.steps).toEqual({ ssh: 'ready', docker: 'installed', network: 'network_install_failed' });
    expect(condition(obj, 'Bootstrapped')).toMatchObject({ status: 'False', reason: 'NetworkInstallFailed' });
    const calls = await commandLines(app.sshd!);
    expect(calls.filter((c) => c.startsWith('tailscale'))).toEqual(['tailscale status --json']);
    expect(calls.filter((c) => c.startsWith('curl') || c.startsWith('sh '))).toEqual([expect.stringMatching(/^curl -fsSL https:\/\/tailscale\.com\/install\.sh -o \S+$/)]);
  }, 120_000);

  it('exits 1 and writes nothing when the token Secret is missing', async () => {
    // Given no DigitalOcean token Secret
    const w = (world = await World.start({ secrets: false }));
    await w.createSecrets({ token: false });
    await w.commitHosts(ONE_HOST);

    // When stk infra up runs
    const result = await w.infra(['up', '--env', 'staging']);

    // Then it names the missing Secret, writes no resource and calls no cloud API
    expectExit(result, 1);
    expect(result.stderr).toContain('missing credentials: nothing was written');
    expect(result.stderr).toContain('Secret do-token does not exist');
    expect(await w.findInfraHost('staging-app-1')).toBeUndefined();
    expect(w.sim.requests).toEqual([]);
  }, 120_000);

  it('marks a host config_invalid, without any cloud API call, when its token Secret is missing, and retries at once when the Secret appears', async () => {
    // Given an InfraHost written directly (as GitOps would), naming a token Secret that does not exist
    const w = (world = await World.start({ secrets: false }));
    await w.createSecrets({ token: false });
    const manifest = {
      apiVersion: API_VERSION,
      kind: 'InfraHost',
      metadata: { name: 'staging-app-1', namespace: w.namespace },
      spec: {
        project: w.project,
        environment: 'staging',
        host: 'app-1',
        provider: 'digitalocean',
        region: 'nyc1',
        size: 's-2vcpu-4gb',
        image: 'ubuntu-24-04-x64',
        credentialsSecretRef: { name: 'do-token', key: 'token' },
        sshKey: { name: 'deploy', privateKeySecretRef: { name: 'deploy-ssh', key: 'id_ed25519' } },
      },
    };

    // When it is applied
    expectExit(await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) }));

    // Then the operator records config_invalid and stalls, and the cloud API was never called
    const waited = await kubectl(['wait', 'infrahost/staging-app-1', '-n', w.namespace, '--for=jsonpath={.status.steps.config}=config_invalid', '--timeout=60s']);
    expectExit(waited);
    const obj = await w.infraHost('staging-app-1');
    expect(obj.status?.phase).toBe('Failed');
    expect(condition(obj, 'Provisioned')).toMatchObject({ status: 'False', reason: 'ConfigInvalid' });
    expect(condition(obj, 'Stalled')).toMatchObject({ status: 'True', reason: 'ConfigInvalid' });
    expect(condition(obj, 'Ready')?.message).toContain('the DigitalOcean token Secret do-token (key token) is missing');
    expect(w.sim.requests).toEqual([]);

    // When the missing Secret is created
    await w.createSecrets({ sshKey: false, tailscale: false });

    // Then the host is reconciled at once (the periodic resync is 5 minutes away): the create goes out
    const deadline = Date.now() + 30_000;
    while (w.sim.requestsTo('POST', '/v2/droplets').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(w.sim.requestsTo('POST', '/v2/droplets').map((r) => (r.body as { name?: string }).name)).toEqual([`${w.project}-staging-app-1`]);
  }, 120_000);
});
