import { describe, expect, it } from 'vitest';
import type { InfraHost } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { hostsNamingSecret, secretMetadata } from './secret-watch.ts';

type Obj = InfraHost & KubeObject;

function host(namespace: string, name: string, spec: Partial<InfraHost['spec']>, deleting = false): Obj {
  return {
    metadata: { name, namespace, ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: {
      project: 'shop',
      environment: 'staging',
      host: name,
      provider: 'digitalocean',
      region: 'nyc1',
      size: 's-1vcpu-1gb',
      image: 'ubuntu-24-04-x64',
      credentialsSecretRef: { name: 'do-token', key: 'token' },
      sshKey: { generate: true },
      ...spec,
    },
  } as Obj;
}

describe('Secret watch', () => {
  it('maps a Secret to the InfraHosts of its namespace that name it (token, SSH key, Tailscale key)', () => {
    const hosts = [
      host('stk-a', 'app-1', {}),
      host('stk-a', 'db-1', { credentialsSecretRef: { name: 'other', key: 'token' }, sshKey: { name: 'deploy', privateKeySecretRef: { name: 'do-token', key: 'k' } } }),
      host('stk-a', 'ts-1', { credentialsSecretRef: { name: 'other', key: 'token' }, bootstrap: { tailscale: { authKeySecretRef: { name: 'ts', key: 'authkey' } } } }),
      host('stk-b', 'app-1', {}),
      host('stk-a', 'gone-1', {}, true),
    ];

    expect(hostsNamingSecret(hosts, { metadata: { name: 'do-token', namespace: 'stk-a' } })).toEqual(['stk-a/app-1', 'stk-a/db-1']);
    expect(hostsNamingSecret(hosts, { metadata: { name: 'ts', namespace: 'stk-a' } })).toEqual(['stk-a/ts-1']);
    expect(hostsNamingSecret(hosts, { metadata: { name: 'ts', namespace: 'stk-b' } })).toEqual([]);
    // the generated key's Secret is the operator's own: writing it triggers nothing
    expect(hostsNamingSecret(hosts, { metadata: { name: 'infrahost-app-1-ssh', namespace: 'stk-a' } })).toEqual([]);
  });

  it('keeps only metadata: no Secret value enters the cache', () => {
    const kept = secretMetadata({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-token', namespace: 'stk-a', resourceVersion: '7', uid: 'u', annotations: { a: 'b' } }, data: { token: 'c2VjcmV0' } });
    expect(kept).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-token', namespace: 'stk-a', resourceVersion: '7', uid: 'u' } });
    expect(JSON.stringify(kept)).not.toContain('c2VjcmV0');
  });
});
