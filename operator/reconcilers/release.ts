import { markReady, markReconciling } from '../../core/api/conditions.ts';
import { Kinds, RELEASE_IN_USE_FINALIZER, type CommonStatus, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { Informer } from '../../core/kube/informer.ts';
import type { ReconcileContext, ReconcileRequest, Reconciler, WatchMapping } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus } from '../runtime/skeleton.ts';

const inUseRecheckMs = 10_000;

/** Which environments of the namespace name a release: desired, current or in history. */
export function environmentsNaming(environments: Array<Environment & KubeObject>, namespace: string | undefined, release: string): string[] {
  return environments
    .filter((e) => e.metadata.namespace === namespace)
    .filter((e) => e.spec.release === release || e.status?.currentRelease === release || (e.status?.history ?? []).some((h) => h.release === release))
    .map((e) => e.metadata.name)
    .sort();
}

/**
 * Releases are immutable snapshots. This reconciler keeps a finalizer on each so that deleting one
 * (a GitOps prune, a stray kubectl delete) waits until no Environment names it any more.
 */
export class ReleaseReconciler implements Reconciler {
  readonly name = 'release';
  readonly kind = Kinds.Release;

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly environments: Informer<Environment & KubeObject>,
  ) {}

  /** An Environment change re-checks the releases it names (or named). */
  static watchEnvironments(): WatchMapping {
    return {
      kind: Kinds.Environment,
      map: (env) => {
        const e = env as Environment & KubeObject;
        const names = new Set([e.spec.release, e.status?.currentRelease, ...(e.status?.history ?? []).map((h) => h.release)].filter((n): n is string => Boolean(n)));
        return [...names].map((n) => `${e.metadata.namespace}/${n}`);
      },
    };
  }

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Release, CommonStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      finalizer: RELEASE_IN_USE_FINALIZER,
      finalize: async ({ obj, status, generation }) => {
        // Read the Environments fresh: the cache may lag behind a pointer that just moved.
        const { items } = await this.client.list<Environment & KubeObject>(Kinds.Environment, { namespace: obj.metadata.namespace! });
        const users = environmentsNaming(items, obj.metadata.namespace, obj.metadata.name);
        if (users.length === 0) return undefined;
        status.conditions = markReconciling(status.conditions, 'InUse', `deletion waits: environment(s) ${users.join(', ')} name this release`, generation);
        return { requeueAfterMs: inUseRecheckMs };
      },
      work: async ({ obj, status, generation }) => {
        const users = environmentsNaming(this.environments.list(), obj.metadata.namespace, obj.metadata.name);
        status.conditions = markReady(status.conditions, 'Available', users.length > 0 ? `named by ${users.join(', ')}` : 'not named by any environment', generation);
      },
    });
  }
}
