import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectExit, repoRoot, runCommand, type RunResult } from '../support/cluster.ts';

/**
 * The README's first commands, as a new user runs them: a `git clone` into a directory only its
 * owner may enter (mode 0700, as `mktemp -d` makes it, or root's home), then
 * `bash hack/setup.sh && npm run demo`, the demo a second time, `npm run cluster:down`, and the
 * test command. The clone shares this checkout's node_modules (setup then skips `npm ci`: it finds
 * the pinned versions installed) and the control-plane binaries in ~/.cache/santokit, so no
 * package is downloaded and nothing is compiled but the project. The test command runs one small
 * file (`npm test -- cli/reference.test.ts`): the whole suite is what CI runs anyway, and the
 * point here is that the command works from such a clone, not to run the suite twice.
 */

/** A user's environment: none of this test run's cluster settings leak into the clone's commands. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(VITEST|SANTOKIT_|STK_|npm_)/.test(k) || ['KUBECONFIG', 'NODE_OPTIONS', 'TEST', 'NODE_ENV'].includes(k)) continue;
    env[k] = v;
  }
  env.PATH = `/usr/local/go/bin:${env.PATH ?? ''}`;
  env.NO_COLOR = '1';
  return env;
}

const sh = (cwd: string, script: string, timeoutMs: number): Promise<RunResult> => runCommand('bash', ['-c', script], { cwd, env: userEnv(), timeoutMs });

/** Pids of live processes whose command line or environment mentions one of the paths. */
function processesMentioning(paths: string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    for (const what of ['cmdline', 'environ']) {
      let text = '';
      try {
        text = readFileSync(`/proc/${pid}/${what}`, 'utf8');
      } catch {
        continue; // gone, or not ours to read
      }
      if (paths.some((p) => text.includes(p))) {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
        if (stat !== 'Z') found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 160)}`);
        break;
      }
    }
  }
  return found;
}

describe("the README's first commands, from a clone in a 0700 directory", () => {
  it('setup and demo work twice, cluster:down leaves no process behind, and the test command runs', { timeout: 900_000 }, async () => {
    // Given a clone of this repository in a directory only its owner may enter
    const home = mkdtempSync(path.join(tmpdir(), 'stk-first-contact-'));
    expect(statSync(home).mode & 0o777).toBe(0o700);
    const clone = path.join(home, 'santokit');
    const state = path.join(clone, '.santokit/cluster');
    let pgDir: string | undefined;
    try {
      expectExit(await runCommand('git', ['clone', '-q', repoRoot, clone], { env: userEnv() }));
      symlinkSync(realpathSync(path.join(repoRoot, 'node_modules')), path.join(clone, 'node_modules'));

      // When the README's first command runs
      const first = await sh(clone, 'bash hack/setup.sh && npm run demo', 600_000);
      expectExit(first);
      // Then the state is where the user expects it, and Postgres' data where its user can reach it
      expect(existsSync(path.join(state, 'env')), `no ${state}/env`).toBe(true);
      pgDir = existsSync(path.join(state, 'postgres-dir')) ? readFileSync(path.join(state, 'postgres-dir'), 'utf8').trim() : path.join(state, 'postgres');
      expect(existsSync(path.join(pgDir, 'data/PG_VERSION')), `no Postgres data in ${pgDir}`).toBe(true);
      if (process.getuid?.() === 0) expect(pgDir.startsWith(home)).toBe(false); // the postgres user cannot enter home
      // And the demo went through to the data plane: an insert and a select served, a delete refused
      expect(first.stdout).toMatch(/db\/users\/insert[\s\S]*→ 200 \{"data":\{"id":"[^"]+","email":"ada-\d+@example.com"/);
      expect(first.stdout).toMatch(/db\/users\/select[\s\S]*→ 200 \{"data":\[\{"id":/);
      expect(first.stdout).toMatch(/db\/users\/delete[^\n]*\n\s+→ 403 \{"error":\{"code":"PermissionDenied"/);
      expect(first.stdout).toContain('Try next:');
      const releaseId = /--release-id (rel-[0-9a-f]{16})/.exec(first.stdout)?.[1];
      expect(releaseId, first.stdout).toBeDefined();

      // And what it suggests works: `stk release show --release-id` (the seeds' form) shows the release
      const stkInClone = (args: string) => sh(clone, `source ${state}/env && node_modules/.bin/node dist/cli/main.js ${args}`, 60_000);
      const shown = await stkInClone(`release show --project demo --release-id ${releaseId}`);
      expectExit(shown);
      expect(shown.stdout).toContain(`releaseId=${releaseId}`);
      expect(shown.stdout).toContain('serving: dev');
      expect((await stkInClone(`release show --project demo ${releaseId}`)).stdout).toBe(shown.stdout);

      // When the demo runs again, it works on what is there: the same release, the same key
      const second = await sh(clone, 'npm run demo', 600_000);
      expectExit(second);
      expect(second.stdout).toContain('demo: operator already running');
      expect(second.stdout).toContain('demo: data-plane already running');
      expect(second.stdout).toContain(`--release-id ${releaseId}`);
      expect(second.stdout).toMatch(/demo: reusing API key/);
      expect(second.stdout).toMatch(/db\/users\/select[\s\S]*→ 200/);

      // When the test command runs (one small file; see above)
      const tests = await sh(clone, 'bash hack/setup.sh && npm test -- cli/reference.test.ts', 300_000);
      expectExit(tests);
      expect(tests.stdout).toMatch(/Tests\s+2 passed/);

      // When cluster:down runs, everything the demo started is stopped and its state removed
      expect(processesMentioning([clone]).length).toBeGreaterThan(0);
      expectExit(await sh(clone, 'npm run cluster:down', 120_000));
      expect(processesMentioning([clone, pgDir])).toEqual([]);
      expect(existsSync(state)).toBe(false);
      expect(existsSync(pgDir)).toBe(false);
    } finally {
      if (existsSync(state)) await sh(clone, 'npm run cluster:down', 120_000);
      rmSync(home, { recursive: true, force: true });
    }
  });
});
