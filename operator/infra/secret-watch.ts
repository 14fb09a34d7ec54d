import type { InfraHost, Project } from '../../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { Informer } from '../../core/kube/informer.ts';
import type { Logger } from '../../core/log.ts';
import { ProjectSecrets } from '../bridge/project-secrets.ts';
import { referencedSecrets } from './host-config.ts';

/**
 * Watches the Secrets InfraHosts name, so that creating or fixing one (a missing token, SSH key or
 * Tailscale auth key: `config_invalid`) reconciles the hosts that name it at once instead of at
 * the next periodic resync. Only the Secrets' metadata is listed and watched: their values never
 * reach this process. InfraHosts live in project namespaces, and the operator may list Secrets only there (the
 * RoleBinding ProjectReconciler creates), so there is one watch per project namespace.
 */

type Obj = InfraHost & KubeObject;

/** The keys (`namespace/name`) of the InfraHosts that name the Secret `namespace/name`. */
export function hostsNamingSecret(hosts: readonly Obj[], secret: KubeObject): string[] {
  const ref = `${secret.metadata.namespace ?? ''}/${secret.metadata.name}`;
  return hosts
    .filter((h) => h.metadata.deletionTimestamp === undefined && referencedSecrets(h).includes(ref))
    .map((h) => `${h.metadata.namespace ?? ''}/${h.metadata.name}`)
    .sort();
}

/** A Secret as the watch keeps it: metadata only. */
export function secretMetadata(obj: KubeObject): KubeObject {
  const { name, namespace, resourceVersion, uid } = obj.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, ...(namespace === undefined ? {} : { namespace }), ...(resourceVersion === undefined ? {} : { resourceVersion }), ...(uid === undefined ? {} : { uid }) },
  } as KubeObject;
}

export class SecretWatch {
  readonly #secrets: ProjectSecrets;

  constructor(client: KubeClient, projects: Informer<Project & KubeObject>, log: Logger, hosts: () => readonly Obj[], enqueue: (key: string) => void) {
    // No periodic re-emit: the InfraHosts have their own resync.
    this.#secrets = new ProjectSecrets(client, projects, log, { metadataOnly: true, transform: secretMetadata, resyncMs: 24 * 3_600_000 });
    const onChange = (secret: KubeObject) => {
      for (const key of hostsNamingSecret(hosts(), secret)) enqueue(key);
    };
    this.#secrets.on('upsert', onChange);
    this.#secrets.on('delete', onChange);
  }

  start(): void {
    this.#secrets.start();
  }

  stop(): void {
    this.#secrets.stop();
  }
}
