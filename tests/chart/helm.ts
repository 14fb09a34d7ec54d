import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { kubectl, repoRoot, runCommand, type RunResult } from '../support/cluster.ts';

/** Helpers of the chart tests: the Helm binary, rendering charts/santokit, restricted kubeconfigs. */

export const chartDir = path.join(repoRoot, 'charts/santokit');

export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

let helmPath: string | undefined;
/** The Helm binary from hack/build-helm.sh (built once from the Go module proxy, then cached). */
export function helmBinary(): string {
  helmPath ??= execFileSync('bash', [path.join(repoRoot, 'hack/build-helm.sh')], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
  return helmPath;
}

/** Runs helm with a private home (no repositories, no plugins, nothing of the user's). */
export function helm(args: string[]): Promise<RunResult> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stk-helm-home-'));
  const env = { ...process.env, HELM_CACHE_HOME: path.join(home, 'cache'), HELM_CONFIG_HOME: path.join(home, 'config'), HELM_DATA_HOME: path.join(home, 'data') };
  return runCommand(helmBinary(), args, { env }).finally(() => fs.rmSync(home, { recursive: true, force: true }));
}

/** `helm template` of the chart; every rendered object, in order. */
export async function renderChart(options: { release: string; namespace: string; set?: string[]; includeCrds?: boolean }): Promise<RenderedObject[]> {
  const args = ['template', options.release, chartDir, '--namespace', options.namespace];
  if (options.includeCrds) args.push('--include-crds');
  for (const s of options.set ?? []) args.push('--set', s);
  const res = await helm(args);
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}):\n${res.stderr}`);
  return YAML.parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as RenderedObject | null)
    .filter((o): o is RenderedObject => o !== null);
}

/** The one rendered object of a kind whose name ends with `suffix`. */
export function findObject(objects: RenderedObject[], kind: string, suffix: string): RenderedObject {
  const hits = objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(suffix));
  if (hits.length !== 1) throw new Error(`expected one ${kind} named *${suffix}, found ${hits.map((h) => h.metadata.name).join(', ') || 'none'}`);
  return hits[0]!;
}

export function toYamlStream(objects: RenderedObject[]): string {
  return objects.map((o) => YAML.stringify(o)).join('---\n');
}

/** Creates a namespace for real (kubectl, admin), optionally with labels. */
export async function createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
  const res = await kubectl(['apply', '--server-side', '--field-manager=santokit-chart-test', '-f', '-'], { input: YAML.stringify(ns) });
  if (res.code !== 0) throw new Error(`creating namespace ${name} failed:\n${res.stderr}`);
}

/**
 * A kubeconfig that authenticates as a ServiceAccount (a TokenRequest token, one hour), for the
 * same API server and CA as the admin kubeconfig: what a pod of that ServiceAccount would hold.
 */
export async function serviceAccountKubeconfig(namespace: string, serviceAccount: string, dir: string): Promise<string> {
  const token = await kubectl(['create', 'token', serviceAccount, '--namespace', namespace, '--duration', '1h']);
  if (token.code !== 0) throw new Error(`kubectl create token ${serviceAccount} failed:\n${token.stderr}`);
  const admin = YAML.parse(fs.readFileSync(process.env.KUBECONFIG!, 'utf8')) as { clusters: Array<{ name: string; cluster: Record<string, unknown> }> };
  const cluster = admin.clusters[0]!;
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [cluster],
    users: [{ name: user, user: { token: token.stdout.trim() } }],
    contexts: [{ name: serviceAccount, context: { cluster: cluster.name, user, namespace } }],
    'current-context': serviceAccount,
  };
  const file = path.join(dir, `${serviceAccount}.kubeconfig`);
  fs.writeFileSync(file, YAML.stringify(config), { mode: 0o600 });
  return file;
}
