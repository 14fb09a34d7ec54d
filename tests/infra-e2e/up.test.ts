import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { formatTable } from '../../cli/output.ts';
import { ownershipTag } from '../../core/infra/hosts.ts';
import { ANNOTATION_PROVIDER_ID } from '../../operator/infra/plan.ts';
import { adminClient, kubectl, expectExit } from '../support/cluster.ts';
import { Kinds } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { bootstrapped, commandLines, HOSTS_YAML, TAILSCALE_AUTH_KEY, World } from './world.ts';

/** `stk infra up` from nothing, again with nothing to do, and on hosts that are already bootstrapped. */
describe('stk infra up', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('creates two hosts from nothing with exactly these requests, and a re-run creates nothing and reports unchanged', async () => {
    // Given a project with credentials, two fresh hosts and infra/hosts.yaml committed
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    await w.host('staging', 'db-1');
    await w.commitHosts(HOSTS_YAML);

    // When stk infra up runs
    const first = await w.infra(['up', '--env', 'staging']);

    // Then each host got one create request, exactly as planned, and both are ready
    expect(first.code, `${first.stderr}\n${w.operatorLogs()}`).toBe(0);
    const app = await w.infraHost('staging-app-1');
    const db = await w.infraHost('staging-db-1');
    expect(w.createRequests()).toEqual([
      {
        name: `${w.project}-staging-app-1`,
        region: 'nyc1',
        size: 's-2vcpu-4gb',
        image: 'ubuntu-24-04-x64',
        ssh_keys: [41000001],
        tags: ['santokit', 'santokit-env-staging', ownershipTag(app.metadata.uid ?? '')],
      },
      {
        name: `${w.project}-staging-db-1`,
        region: 'nyc1',
        size: 's-4vcpu-8gb',
        image: 'ubuntu-24-04-x64',
        ssh_keys: [41000001],
        tags: ['santokit', 'santokit-env-staging', ownershipTag(db.metadata.uid ?? '')],
      },
    ]);
    const ids = { app: app.status?.providerId ?? '', db: db.status?.providerId ?? '' };
    const table = (action: string) =>
      `${formatTable(['HOST', 'DROPLET', 'IP', 'ACTION', 'BOOTSTRAP'], [
        ['app-1', ids.app, w.hosts.get('staging/app-1')?.address ?? '', action, 'ok'],
        ['db-1', ids.db, w.hosts.get('staging/db-1')?.address ?? '', action, 'ok'],
      ])}\n`;
    expect(first.stdout).toBe(table('created'));
    expect(app.metadata.annotations?.[ANNOTATION_PROVIDER_ID]).toBe(ids.app);
    expect(app.metadata.finalizers).toContain('santokit.io/infrahost');
    expect(app.status).toMatchObject({
      phase: 'Ready',
      action: 'created',
      publicIPv4: w.hosts.get('staging/app-1')?.address,
      hostKeyFingerprint: w.sshdOf('staging', 'app-1').hostKeyFingerprint,
      steps: { ssh: 'ready', docker: 'installed', network: 'joined' },
    });
    const conditions = Object.fromEntries((app.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions).toEqual({ Ready: 'True', Provisioned: 'True', SSHReady: 'True', Bootstrapped: 'True', Drifted: 'False' });

    // The Tailscale key went over stdin, never on a command line
    const join = (await w.sshdOf('staging', 'app-1').calls()).find((c) => c.command === 'tailscale' && c.argv[0] === 'up');
    expect(join?.argv).toContain('--auth-key=file:/dev/stdin');
    expect(join?.authKey?.sha256).toBe(createHash('sha256').update(TAILSCALE_AUTH_KEY).digest('hex'));
    expect((await commandLines(w.sshdOf('staging', 'app-1'))).join('\n')).not.toContain(TAILSCALE_AUTH_KEY);

    // When it runs again with nothing to do
    w.sim.clearRequests();
    for (const h of ['app-1', 'db-1']) await bootstrapped(w.sshdOf('staging', h));
    const again = await w.infra(['up', '--env', 'staging']);

    // Then nothing is created, nothing installed, and the table differs only in ACTION
    expectExit(again);
    expect(w.sim.requestsTo('POST', '/v2/droplets')).toEqual([]);
    expect(w.sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(again.stdout).toBe(table('unchanged'));
    for (const h of ['app-1', 'db-1']) {
      expect(await commandLines(w.sshdOf('staging', h))).toEqual(['cloud-init status --wait', 'docker version --format {{.Server.Version}}', 'tailscale status --json']);
    }

    // And no secret reached a log, an event, a status or the output
    const everything = [
      first.stdout,
      first.stderr,
      again.stdout,
      again.stderr,
      w.operatorLogs(),
      (await kubectl(['get', 'infrahosts', '-n', w.namespace, '-o', 'yaml'])).stdout,
      (await kubectl(['get', 'events', '-n', w.namespace, '-o', 'yaml'])).stdout,
    ].join('\n');
    expect(everything).not.toContain(w.sim.token);
    expect(everything).not.toContain(TAILSCALE_AUTH_KEY);
    expect(everything).not.toContain(w.key.privateKey.split('\n')[1] ?? 'no key line');
  }, 180_000);

  it('runs no install command on hosts that already have Docker and Tailscale (--json, then status)', async () => {
    // Given a host with Docker running and already on the tailnet
    const w = (world = await World.start());
    await w.host('staging', 'app-1', 'bootstrapped');
    await w.commitHosts(HOSTS_YAML.replace(/\n {4}db-1:.*\n/, '\n'));

    // When stk infra up --json runs
    const result = await w.infra(['up', '--env', 'staging', '--json']);

    // Then only detection ran, and the host reports Docker and the tailnet as present
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(0);
    expect(await commandLines(w.sshdOf('staging', 'app-1'))).toEqual(['cloud-init status --wait', 'docker version --format {{.Server.Version}}', 'tailscale status --json']);
    const id = w.sim.droplets()[0]?.id;
    const address = w.hosts.get('staging/app-1')?.address;
    expect(JSON.parse(result.stdout)).toMatchObject({
      project: w.project,
      hosts: [{ environment: 'staging', host: 'app-1', droplet: String(id), ip: address, action: 'created', bootstrap: 'ok', ready: 'True', steps: { ssh: 'ready', docker: 'present', network: 'present' } }],
    });

    // And stk infra status shows the same from the resource
    const status = await w.infra(['status', '--env', 'staging']);
    expectExit(status);
    expect(status.stdout).toBe(`${formatTable(['HOST', 'DROPLET', 'IP', 'PHASE', 'ACTION', 'BOOTSTRAP', 'READY'], [['app-1', String(id), address ?? '', 'Ready', 'created', 'ok', 'True']])}\n`);
  }, 120_000);

  it('generates a key pair when asked, keeps it in a Secret owned by the host and registers it', async () => {
    // Given sshKey: generate: true
    const w = (world = await World.start());
    const host = await w.host('staging', 'app-1');
    await w.commitHosts(
      HOSTS_YAML.replace('sshKey: { name: deploy, privateKeySecretRef: { name: deploy-ssh, key: id_ed25519 } }', 'sshKey: { generate: true }').replace(/\n {4}db-1:.*\n/, '\n'),
    );

    // When stk infra up runs, and the test host accepts the generated key once it exists
    const running = w.infra(['up', '--env', 'staging']);
    const client = await adminClient();
    let publicKey = '';
    for (let i = 0; i < 300 && publicKey === ''; i++) {
      const secret = await client.find<KubeObject & { data?: Record<string, string> }>(Kinds.Secret, 'infrahost-staging-app-1-ssh', w.namespace);
      publicKey = Buffer.from(secret?.data?.['ssh-publickey'] ?? '', 'base64').toString('utf8').trim();
      if (publicKey === '') await new Promise((r) => setTimeout(r, 100));
    }
    await host.sshd?.authorize(publicKey);
    const result = await running;

    // Then the key was registered under the droplet name and the droplet was created with it
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(0);
    const registered = w.sim.requestsTo('POST', '/v2/account/keys');
    expect(registered.map((r) => (r.body as { name: string }).name)).toEqual([`${w.project}-staging-app-1`]);
    expect(registered[0]?.body).toMatchObject({ public_key: publicKey });
    expect(w.createRequests()[0]?.ssh_keys).toEqual([41000002]);
    const secret = await client.get<KubeObject & { type?: string; metadata: { ownerReferences?: Array<{ kind: string; name: string }> } }>(Kinds.Secret, 'infrahost-staging-app-1-ssh', w.namespace);
    expect(secret.type).toBe('kubernetes.io/ssh-auth');
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'InfraHost', name: 'staging-app-1' })]);
  }, 120_000);
});
