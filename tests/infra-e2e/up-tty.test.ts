import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatTable } from '../../cli/output.ts';
import { adminKubeconfig, repoRoot } from '../support/cluster.ts';
import { startTerminal, type Terminal } from '../support/tmux.ts';
import { HOSTS_YAML, World } from './world.ts';

/**
 * The real `stk infra up` in a real terminal (tmux, 240x50: wide enough that no row wraps) against the DigitalOcean simulator
 * and real sshds: one live row per host, then the same table as without a terminal.
 */
describe('stk infra up in a terminal', () => {
  let world: World | undefined;
  let term: Terminal | undefined;

  afterEach(async () => {
    await term?.close();
    term = undefined;
    await world?.close();
    world = undefined;
  });

  /** Starts `stk infra up --env staging` in a terminal inside the world's repository. */
  async function startUp(w: World): Promise<Terminal> {
    term = await startTerminal({
      argv: [
        'env', '-u', 'CI', `KUBECONFIG=${adminKubeconfig()}`, 'TERM=xterm-256color', 'NO_COLOR=1',
        process.execPath, path.join(repoRoot, 'dist/cli/main.js'), 'infra', 'up', '--env', 'staging', '--project', w.project, '--timeout', '90',
      ],
      width: 240,
      height: 50,
      cwd: w.repo,
      joinWrapped: true,
    });
    return term;
  }

  /** Waits for the screen; a failure shows the operator's last log lines too. */
  const waitForScreen = (w: World, t: Terminal, test: (text: string) => boolean, what: string) =>
    t.waitFor(test, what, { timeoutMs: 90_000, context: () => w.operatorLogs().slice(-4000) });

  it('shows a row per host reaching ready, then the summary table, and exits 0', async () => {
    // Given two fresh hosts and infra/hosts.yaml committed
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    await w.host('staging', 'db-1');
    await w.commitHosts(HOSTS_YAML);

    // When stk infra up runs on a terminal
    const t = await startUp(w);

    // Then the rows appear under the title, and each host reaches ready
    await waitForScreen(w, t, (s) => s.includes(`stk infra up: 2 hosts of ${w.project} at HEAD`) && /^app-1\s+\S+ provisioning/m.test(s) && /^db-1\s+\S+ provisioning/m.test(s), 'a row per host');
    const done = await waitForScreen(w, t, (s) => s.includes('STK_EXITED='), 'stk infra up to exit');
    expect(done).toContain('STK_EXITED=0');
    for (const h of ['app-1', 'db-1']) {
      expect(done).toMatch(new RegExp(`^${h}\\s+✔ provisioning ✔ ssh ✔ docker ✔ tailscale ✔ ready \\d\\S*$`, 'm'));
    }
    // Every row is printed once: no spinner is left behind, and no host shows twice
    expect(done).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
    expect(done.match(/✔ ready/g)).toHaveLength(2);

    // And the summary table is the one stk prints without a terminal
    const app = await w.infraHost('staging-app-1');
    const db = await w.infraHost('staging-db-1');
    const table = formatTable(['HOST', 'DROPLET', 'IP', 'ACTION', 'BOOTSTRAP'], [
      ['app-1', app.status?.providerId ?? '', app.status?.publicIPv4 ?? '', 'created', 'ok'],
      ['db-1', db.status?.providerId ?? '', db.status?.publicIPv4 ?? '', 'created', 'ok'],
    ]);
    expect(done).toContain(`${table}\nSTK_EXITED=0`);
    expect(app.status?.phase).toBe('Ready');
    expect(db.status?.phase).toBe('Ready');
  }, 180_000);

  it('shows a failed host with a cross, its result code and message, while the other becomes ready, and exits 10', async () => {
    // Given two fresh hosts, and apt-get failing to install Docker on db-1
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    const db = await w.host('staging', 'db-1');
    // (the install takes a few seconds, so the row can be seen at work on docker)
    await db.sshd?.script('apt-get', [{ exitCode: 0 }, { exitCode: 100, sleepSeconds: 6, stderr: 'E: Unable to locate package docker.io\n' }]);
    await w.commitHosts(HOSTS_YAML);

    // When stk infra up runs on a terminal
    const t = await startUp(w);

    // Then db-1's row shows docker at work while the operator reports that stage, ssh passed
    await waitForScreen(w, t, (s) => /^db-1\s+✔ provisioning ✔ ssh [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] docker · tailscale/m.test(s), 'db-1 at work on docker');
    expect((await w.infraHost('staging-db-1')).status).toMatchObject({ phase: 'Bootstrapping', bootstrapStage: 'docker' });

    // And its row stops at docker with the code and message, app-1's reaches ready
    const done = await waitForScreen(w, t, (s) => s.includes('STK_EXITED='), 'stk infra up to exit');
    expect(done).toContain('STK_EXITED=10');
    expect(done).toMatch(/^db-1\s+✔ provisioning ✔ ssh ✘ docker docker_install_failed: .*exited 100: E: Unable to locate package docker\.io/m);
    expect(done).toMatch(/^app-1\s+✔ provisioning ✔ ssh ✔ docker ✔ tailscale ✔ ready /m);
    const dbHost = await w.infraHost('staging-db-1');
    expect(dbHost.status?.steps).toEqual({ ssh: 'ready', docker: 'docker_install_failed', network: 'not_run' });
    expect(dbHost.status?.bootstrapStage).toBeUndefined();

    // And the table and the error summary are those of a run without a terminal
    const app = await w.infraHost('staging-app-1');
    expect(done).toContain(
      formatTable(['HOST', 'DROPLET', 'IP', 'ACTION', 'BOOTSTRAP'], [
        ['app-1', app.status?.providerId ?? '', app.status?.publicIPv4 ?? '', 'created', 'ok'],
        ['db-1', dbHost.status?.providerId ?? '', dbHost.status?.publicIPv4 ?? '', 'created', 'docker_install_failed'],
      ]),
    );
    expect(done).toContain('stk: 1 of 2 hosts not ready:');
  }, 180_000);
});
