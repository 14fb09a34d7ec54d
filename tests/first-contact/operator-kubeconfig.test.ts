import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, expectExit, freePort, repoRoot, runCommand, startOperator, uniqueName } from '../support/cluster.ts';

/**
 * The operator needs a kubeconfig (or a Pod's service account). Without one it can never work:
 * it exits 1 at once, saying to pass --kubeconfig or set KUBECONFIG. With one whose API server is
 * not up yet it waits for it (hack/demo.sh and a cluster's start-up order rely on that).
 */
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'stk-op-kc-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The operator's environment without any kubeconfig: no KUBECONFIG, a HOME without ~/.kube, not in a Pod. */
function noKubeconfigEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  return env;
}

const operator = (args: string[], env: NodeJS.ProcessEnv) =>
  // Before the fix it ran on, logging an error every 10 s: the deadline turns that into a kill (exit 128).
  runCommand(process.execPath, [path.join(repoRoot, 'dist/operator/main.js'), '--bind-address', '127.0.0.1', '--health-port', '0', ...args], { env, timeoutMs: 20_000 });

describe('santokit-operator without a usable kubeconfig', () => {
  it('exits 1 at once when there is no kubeconfig at all, naming --kubeconfig and KUBECONFIG', async () => {
    const res = await operator([], noKubeconfigEnv(tempDir()));
    expectExit(res, 1);
    expect(res.stderr).toMatch(/santokit-operator: no kubeconfig/);
    expect(res.stderr).toContain('--kubeconfig');
    expect(res.stderr).toContain('KUBECONFIG');
  });

  it('exits 1 at once when KUBECONFIG or --kubeconfig names a file that is not there', async () => {
    const missing = path.join(tempDir(), 'nope', 'kubeconfig');
    for (const [args, extra] of [
      [[], { KUBECONFIG: missing }],
      [['--kubeconfig', missing], {}],
    ] as const) {
      const res = await operator([...args], { ...noKubeconfigEnv(tempDir()), ...extra });
      expectExit(res, 1);
      expect(res.stderr).toContain(`cannot read kubeconfig ${missing}: ENOENT`);
      expect(res.stderr).toMatch(/hint: pass --kubeconfig <file> or set KUBECONFIG/);
    }
  });

  it('exits 1 at once when the kubeconfig names no current context', async () => {
    const file = path.join(tempDir(), 'kubeconfig');
    writeFileSync(file, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
    const res = await operator(['--kubeconfig', file], noKubeconfigEnv(tempDir()));
    expectExit(res, 1);
    expect(res.stderr).toContain(`kubeconfig ${file} has no current context`);
  });

  it('waits, running, for an API server that is not up yet, and stops cleanly on SIGTERM', async () => {
    // Given a valid kubeconfig whose API server does not listen (yet)
    const file = path.join(tempDir(), 'kubeconfig');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n  - name: c\n    cluster: { server: "https://127.0.0.1:${await freePort()}", insecure-skip-tls-verify: true }\nusers:\n  - name: u\n    user: { token: t }\ncontexts:\n  - name: x\n    context: { cluster: c, user: u }\ncurrent-context: x\n`,
    );
    const op = await startOperator({ leaseName: uniqueName('lease'), kubeconfig: file });
    try {
      // Then it retries its bootstrap instead of exiting
      await eventually(async () => (op.records().some((r) => r.msg === 'bootstrap failed; retrying') ? true : undefined), { timeoutMs: 30_000, what: 'a bootstrap retry' });
      expect(op.child.exitCode).toBeNull();
      expect(op.logs()).toContain('ClusterUnreachable');
    } finally {
      // And SIGTERM stops the waiting at once, exit 0
      expect(await op.stop('SIGTERM')).toBe(0);
    }
  });
});
