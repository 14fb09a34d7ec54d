import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Condition, KindInfo } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, env, repoRoot, runCommand } from './cluster.ts';

/**
 * Real Flux (source-controller and kustomize-controller, built by hack/build-flux.sh) running as
 * local processes against the test cluster (hack/flux.sh), and the objects a test gives it.
 */

export const FluxKinds = {
  GitRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', kind: 'GitRepository', plural: 'gitrepositories', namespaced: true },
  Kustomization: { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', kind: 'Kustomization', plural: 'kustomizations', namespaced: true },
} as const satisfies Record<string, KindInfo>;

/** The namespace Flux runs in and where the tests put their Flux objects. */
export const fluxNamespace = 'flux-system';

/**
 * A cold build of both controllers takes ~5 minutes on 2 idle cores and was seen to take 29 on a
 * busy machine; hooks that call startFlux allow that. Cached, startFlux takes a few seconds.
 */
export const fluxStartTimeoutMs = 35 * 60_000;

export interface FluxObject extends KubeObject {
  spec: Record<string, unknown>;
  status?: { conditions?: Condition[]; artifact?: { revision?: string }; lastAppliedRevision?: string; lastAttemptedRevision?: string; observedGeneration?: number };
}

function hackEnv(): NodeJS.ProcessEnv {
  return { ...process.env, SANTOKIT_STATE_DIR: env('SANTOKIT_STATE_DIR') };
}

async function hack(script: string, command: string[], timeoutMs: number): Promise<void> {
  const res = await runCommand('bash', [path.join(repoRoot, 'hack', script), ...command], { env: hackEnv(), timeoutMs });
  if (res.code !== 0) throw new Error(`hack/${script} ${command.join(' ')} exited with ${res.code}:\n${res.stderr}${res.stdout}`);
}

/**
 * Builds (or reuses) the Flux controllers, installs their CRDs and starts them against the test
 * cluster; resolves once both are healthy. Idempotent: controllers already running are kept.
 */
export async function startFlux(): Promise<void> {
  await hack('build-flux.sh', [], fluxStartTimeoutMs);
  await hack('flux.sh', ['up'], 120_000);
}

/** Stops both controllers (their CRDs and the objects stay). */
export async function stopFlux(): Promise<void> {
  await hack('flux.sh', ['down'], 60_000);
}

/** The last lines of a controller's log, for failure messages. */
export function fluxLogTail(controller: 'source-controller' | 'kustomize-controller', lines = 40): string {
  const file = path.join(env('SANTOKIT_STATE_DIR'), 'logs', `flux-${controller}.log`);
  if (!fs.existsSync(file)) return '';
  return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** The example manifests of config/gitops/flux/, parsed (one object per file). */
export function exampleManifest(file: string): FluxObject {
  return YAML.parse(fs.readFileSync(path.join(repoRoot, 'config/gitops/flux', file), 'utf8')) as FluxObject;
}

/** Creates or updates a Flux object (server-side apply, as `kubectl apply --server-side` would). */
export async function applyFluxObject(obj: FluxObject): Promise<FluxObject> {
  const client = await adminClient();
  const kind = obj.kind === 'GitRepository' ? FluxKinds.GitRepository : FluxKinds.Kustomization;
  return client.apply(kind, obj, { fieldManager: 'santokit-test', force: true });
}

export async function deleteFluxObject(kind: KindInfo, name: string): Promise<void> {
  const client = await adminClient();
  await client.delete(kind, name, fluxNamespace);
}

export async function getFluxObject(kind: KindInfo, name: string): Promise<FluxObject> {
  const client = await adminClient();
  return client.get<FluxObject>(kind, name, fluxNamespace);
}

/**
 * Asks Flux to reconcile now instead of at its next interval, as `flux reconcile` and Flux's
 * webhook receiver do: the controllers act on a new `reconcile.fluxcd.io/requestedAt` value.
 */
export async function requestReconcile(kind: KindInfo, name: string): Promise<void> {
  const client = await adminClient();
  await client.patch(kind, name, fluxNamespace, { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': new Date().toISOString() } } });
}

export function conditionOf(obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

/** True when the object's Ready condition is True and describes its current generation. */
export function isReady(obj: FluxObject | (KubeObject & { status?: { conditions?: Condition[]; observedGeneration?: number } }) | undefined): boolean {
  const ready = conditionOf(obj, 'Ready');
  return ready?.status === 'True' && (obj?.status?.observedGeneration === undefined || obj.status.observedGeneration === obj.metadata.generation);
}

/** The commit SHA of a Flux revision (`main@sha1:<sha>`), or undefined. */
export function revisionSha(revision: string | undefined): string | undefined {
  return /@sha1:([0-9a-f]{40})$/.exec(revision ?? '')?.[1];
}
