import { API_VERSION, type Connection, type Environment, type Project, type Release, type SecretKeyRef } from '../core/api/resources.ts';
import type { KubeObject } from '../core/kube/client.ts';
import type { BuiltRelease } from '../core/release/build.ts';
import { encodeReleaseContent, type ChunkConfigMap, type EncodeOptions } from '../core/release/content.ts';

/**
 * The objects stk writes, built in one place whether they go to the cluster or, with `--emit`, to
 * a GitOps directory. Key order is fixed here, so the YAML written from them is byte-stable.
 */

export function projectManifest(name: string, namespace?: string): Project & KubeObject {
  return { apiVersion: API_VERSION, kind: 'Project', metadata: { name }, spec: namespace ? { namespace } : {} };
}

export function environmentManifest(name: string, namespace: string, spec: Environment['spec']): Environment & KubeObject {
  return { apiVersion: API_VERSION, kind: 'Environment', metadata: { name, namespace }, spec };
}

export function connectionManifest(objectName: string, namespace: string, spec: Connection['spec'], annotations?: Record<string, string>): Connection & KubeObject {
  return { apiVersion: API_VERSION, kind: 'Connection', metadata: { name: objectName, namespace, ...(annotations ? { annotations } : {}) }, spec };
}

/** `owner/name` of a GitHub repository and the Secret key holding a token for commit statuses. */
export interface GitHubReporting {
  repository: string;
  tokenSecretRef: SecretKeyRef;
}

/** A Release as stk writes it, and the chunk ConfigMaps it names when its content is stored chunked. */
export interface ReleaseManifests {
  release: Release & KubeObject;
  /** empty for an inline Release; created before the Release (it must never name a missing chunk) */
  chunks: ChunkConfigMap[];
}

/**
 * The Release of a build: inline (`spec.schema`, `spec.permissions`) while its spec is small,
 * else chunked (`spec.content` and immutable ConfigMaps; see core/release/content.ts). Either way
 * the same build gives the same id and the same bytes.
 */
export function releaseManifest(built: BuiltRelease, namespace: string, github?: GitHubReporting, options: EncodeOptions = {}): ReleaseManifests {
  const c = built.content;
  const head = { project: c.project, ref: c.ref, ...(c.repo ? { repo: c.repo } : {}), contentHash: built.contentHash };
  const metadata = { name: built.id, namespace, labels: { 'santokit.io/project': c.project } };
  const inline: Release & KubeObject = {
    apiVersion: API_VERSION,
    kind: 'Release',
    metadata,
    spec: { ...head, schema: c.schema, permissions: c.permissions as unknown as Record<string, unknown>, ...(github ? { github } : {}) },
  };
  const encoded = encodeReleaseContent(built, namespace, Buffer.byteLength(JSON.stringify(inline.spec)), options);
  if (encoded.format === 'inline') return { release: inline, chunks: [] };
  return {
    release: { apiVersion: API_VERSION, kind: 'Release', metadata, spec: { ...head, content: encoded.content, ...(github ? { github } : {}) } },
    chunks: encoded.chunks,
  };
}
