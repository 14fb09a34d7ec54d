import fs from 'node:fs';
import path from 'node:path';
import { eventually, expectExit, kubectl, repoRoot, runCommand, type RunResult } from '../support/cluster.ts';

/**
 * Helpers of the real-node suite: hack/node.sh (a single-node cluster with kubelet, containerd
 * and kube-proxy), the env file it writes, and calls through the data plane's Service.
 */

export const nodeScript = path.join(repoRoot, 'hack/node.sh');
export const stateDir = process.env.SANTOKIT_NODE_STATE_DIR ?? path.join(repoRoot, '.santokit/node');

/** `hack/node.sh <cmd>`; cold, `up` builds binaries and images, hence the long deadline. */
export function node(cmd: 'up' | 'down' | 'status' | 'snapshot'): Promise<RunResult> {
  return runCommand('bash', [nodeScript, cmd], { env: { ...process.env, SANTOKIT_NODE_STATE_DIR: stateDir }, timeoutMs: 40 * 60_000 });
}

/** Parses the `export NAME='value'` lines hack/node.sh writes. */
export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1).replaceAll("'\\''", "'");
    out[m[1]!] = v;
  }
  return out;
}

export interface NodeCluster {
  readonly image: string;
  readonly nodeIp: string;
  readonly nodeName: string;
  /** containerd's socket (ctr --address) */
  readonly containerdSock: string;
  /** the stage timings `up` printed ("etcd ready (1s)" …) */
  readonly timings: string[];
}

/**
 * Brings the node up and points this process at it: KUBECONFIG, SANTOKIT_KUBECTL (the helpers of
 * tests/support/cluster.ts) and SANTOKIT_PG_ADMIN_URL (tests/support/postgres.ts) name the node's
 * API server and its Postgres on the bridge address, which pods reach too.
 */
export async function nodeUp(): Promise<NodeCluster> {
  const res = await node('up');
  expectExit(res);
  const envFile = res.stdout.trim().split('\n').pop()!;
  const env = readEnvFile(envFile);
  process.env.KUBECONFIG = env.KUBECONFIG;
  process.env.SANTOKIT_KUBECTL = env.SANTOKIT_KUBECTL;
  process.env.SANTOKIT_PG_ADMIN_URL = env.SANTOKIT_NODE_PG_ADMIN_URL;
  const timings = res.stderr.split('\n').filter((l) => /\(\d+s\)|up in \d+s|built in|cached|: \d+(\.\d+)?[kMG]B/.test(l));
  return { image: env.SANTOKIT_NODE_IMAGE!, nodeIp: env.SANTOKIT_NODE_IP!, nodeName: env.SANTOKIT_NODE_NAME!, containerdSock: env.SANTOKIT_NODE_CONTAINERD_SOCK!, timings };
}

/** `kubectl ... -o json`, parsed; fails the test on a non-zero exit. */
export async function kubectlJson<T>(args: string[]): Promise<T> {
  const res = await kubectl([...args, '-o', 'json']);
  expectExit(res);
  return JSON.parse(res.stdout) as T;
}

export interface PodJson {
  metadata: { name: string; creationTimestamp: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string; securityContext?: Record<string, unknown>; containers: Array<{ name: string; securityContext?: Record<string, unknown> }> };
  status: {
    phase: string;
    podIP?: string;
    startTime?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime: string }>;
    containerStatuses?: Array<{ name: string; containerID?: string; ready: boolean; restartCount: number; state: { running?: { startedAt: string } } }>;
  };
}

export async function podsOf(namespace: string, selector: string): Promise<PodJson[]> {
  return (await kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-n', namespace, '-l', selector])).items;
}

export const isReady = (p: PodJson): boolean => !p.metadata.deletionTimestamp && p.status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';

/** Waits until a Deployment has `replicas` updated, ready pods and no others. */
export async function waitDeploymentReady(namespace: string, name: string, timeoutMs = 180_000): Promise<void> {
  await eventually(
    async () => {
      const d = await kubectlJson<{ spec: { replicas: number }; metadata: { generation: number }; status: { observedGeneration?: number; replicas?: number; readyReplicas?: number; updatedReplicas?: number } }>(['get', 'deployment', name, '-n', namespace]);
      const s = d.status;
      return s.observedGeneration === d.metadata.generation && s.readyReplicas === d.spec.replicas && s.updatedReplicas === d.spec.replicas && s.replicas === d.spec.replicas ? true : undefined;
    },
    { timeoutMs, intervalMs: 500, what: `deployment ${namespace}/${name} to be ready` },
  );
}

export interface CallResult {
  status: number;
  body: { data?: unknown; error?: { code: string; message: string } };
}

/** POST /call at a base URL (the Service's ClusterIP from the host). */
export async function callAt(baseUrl: string, apiKey: string | undefined, callPath: string, params: unknown = {}): Promise<CallResult> {
  const res = await fetch(`${baseUrl}/call`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey === undefined ? {} : { 'x-santokit-api-key': apiKey }) },
    body: JSON.stringify({ path: callPath, params }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as CallResult['body'] };
}

/** Milliseconds between two RFC 3339 times. */
export const msBetween = (from: string | undefined, to: string | undefined): number | undefined => (from && to ? Date.parse(to) - Date.parse(from) : undefined);

/** The host pid of a container's main process (containerd's task list). */
export async function hostPidOf(containerdSock: string, containerID: string): Promise<number> {
  const id = containerID.replace(/^containerd:\/\//, '');
  const res = await runCommand('ctr', ['--address', containerdSock, '--namespace', 'k8s.io', 'tasks', 'ls']);
  expectExit(res);
  const line = res.stdout.split('\n').find((l) => l.startsWith(`${id} `));
  if (!line) throw new Error(`container ${id} has no task in containerd:\n${res.stdout}`);
  return Number(line.trim().split(/\s+/)[1]);
}
