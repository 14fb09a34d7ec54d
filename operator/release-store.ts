import { Kinds, type Release } from '../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../core/kube/client.ts';

/**
 * Getting a Release for use. Neither the operator nor the data plane caches Releases whole: their
 * watches hold metadata only, and whoever needs a Release's content fetches the full object here,
 * once, when it needs it (the pipeline when it applies a release, the data plane for the
 * releases its environments serve or are about to serve). Every such read goes through this one
 * function, so how a Release's content is stored is known in one place.
 */
export type FullRelease = Release & KubeObject;

/** The full Release `namespace/id` (one GET); undefined when it does not exist. */
export function fetchRelease(client: KubeClient, namespace: string, id: string): Promise<FullRelease | undefined> {
  return client.find<FullRelease>(Kinds.Release, id, namespace);
}
