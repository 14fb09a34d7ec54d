import { API_VERSION, type Connection, type Environment, type Project, type Release, type SecretKeyRef } from '../core/api/resources.ts';
import type { KubeObject } from '../core/kube/client.ts';
import type { BuiltRelease } from '../core/release/build.ts';

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

export function releaseManifest(built: BuiltRelease, namespace: string, github?: GitHubReporting): Release & KubeObject {
  const c = built.content;
  return {
    apiVersion: API_VERSION,
    kind: 'Release',
    metadata: { name: built.id, namespace, labels: { 'santokit.io/project': c.project } },
    spec: {
      project: c.project,
      ref: c.ref,
      ...(c.repo ? { repo: c.repo } : {}),
      contentHash: built.contentHash,
      schema: c.schema,
      permissions: c.permissions as unknown as Record<string, unknown>,
      ...(github ? { github } : {}),
    },
  };
}
