import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Brings up the local control plane (etcd, kube-apiserver, kube-controller-manager, CRDs) and a
 * throwaway Postgres with hack/cluster.sh, once per test run, and exports their coordinates
 * (KUBECONFIG, SANTOKIT_KUBECTL, SANTOKIT_PG_ADMIN_URL …) to the test processes.
 * A cluster that is already up in the same state directory is reused and left running. Helm is
 * built (or found in the cache) here too.
 */
const root = path.resolve(import.meta.dirname, '../..');
const stateDir = process.env.SANTOKIT_TEST_STATE_DIR ?? path.join(root, '.santokit', 'test-cluster');
const cluster = (cmd: string): string =>
  execFileSync('bash', [path.join(root, 'hack/cluster.sh'), cmd], {
    cwd: root,
    env: { ...process.env, SANTOKIT_STATE_DIR: stateDir },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });

export default function setup(): () => void {
  const wasUp = isUp();
  const out = cluster('up');
  for (const line of out.split('\n')) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) process.env[m[1]] = unquote(m[2]);
  }
  // Helm (for the chart tests) is built from the Go module proxy once, here, so no test waits on it.
  process.env.SANTOKIT_HELM ??= execFileSync('bash', [path.join(root, 'hack/build-helm.sh')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop();
  return () => {
    if (!wasUp && !process.env.SANTOKIT_KEEP_CLUSTER) cluster('down');
  };
}

function isUp(): boolean {
  try {
    return /apiserver.*running/i.test(cluster('status'));
  } catch {
    return false;
  }
}

function unquote(v: string): string {
  if ((v.startsWith("'") && v.endsWith("'")) || (v.startsWith('"') && v.endsWith('"'))) return v.slice(1, -1);
  return v;
}
