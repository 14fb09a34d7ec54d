import { isDeepStrictEqual } from 'node:util';
import { findCondition, markRetrying, markStalled } from '../../core/api/conditions.ts';
import type { CommonStatus, KindInfo, Resource } from '../../core/api/resources.ts';
import { asSantokitError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { redactSecrets } from '../../core/redact.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from './controller.ts';
import type { EventRecorder } from './events.ts';
import { mergePatchOf } from '../../core/kube/merge-patch.ts';

export const FIELD_MANAGER = 'santokit-operator';

/** What a reconcile body sees: the object and a draft of its status to fill in. */
export interface ReconcileScope<T extends Resource<unknown, S>, S extends CommonStatus> {
  readonly obj: T;
  /** the status being built; written to the API once, after the body, success or not */
  status: S;
  readonly generation: number | undefined;
  readonly context: ReconcileContext;
}

export interface SkeletonOptions<T extends Resource<unknown, S>, S extends CommonStatus> {
  client: KubeClient;
  events: EventRecorder;
  kind: KindInfo;
  request: ReconcileRequest;
  context: ReconcileContext;
  /** present → added before any work and removed by `finalize` */
  finalizer?: string;
  /** cleanup on deletion; return a result to wait (the finalizer stays) or undefined when done */
  finalize?: (scope: ReconcileScope<T, S>) => Promise<ReconcileResult | undefined>;
  /** called when the object no longer exists (release what was held for it) */
  gone?: () => Promise<void>;
  /** the work; fills scope.status and returns when to look again */
  work: (scope: ReconcileScope<T, S>) => Promise<ReconcileResult | void>;
}

/**
 * The one reconcile skeleton (Flux style): get (gone → done) → on deletion finalize → add the
 * finalizer first → do the work. Status is patched in exactly one place, in `finally`, and only
 * when it changed; an Event is recorded whenever the Ready condition changes.
 * A thrown error becomes Stalled (terminal) or Ready=False with a retry (retryable) and is
 * rethrown so the controller can back off.
 */
export async function reconcileWithStatus<T extends Resource<unknown, S>, S extends CommonStatus>(options: SkeletonOptions<T, S>): Promise<ReconcileResult | void> {
  const { client, kind, request } = options;
  const obj = await client.find<T & KubeObject>(kind, request.name, request.namespace);
  if (!obj) {
    await options.gone?.();
    return;
  }

  if (obj.metadata.deletionTimestamp) {
    if (!options.finalizer || !obj.metadata.finalizers?.includes(options.finalizer)) return;
    const scope = makeScope<T, S>(obj, options.context);
    const wait = options.finalize ? await options.finalize(scope) : undefined;
    if (wait) {
      await writeStatus(options, obj, scope.status);
      return wait;
    }
    await removeFinalizer(client, kind, obj, options.finalizer);
    return;
  }

  if (options.finalizer && !obj.metadata.finalizers?.includes(options.finalizer)) {
    await client.patch(kind, obj.metadata.name, obj.metadata.namespace, {
      metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers: [...(obj.metadata.finalizers ?? []), options.finalizer] },
    });
    // The update triggers another reconcile with the fresh object.
    return;
  }

  const scope = makeScope<T, S>(obj, options.context);
  try {
    return await options.work(scope);
  } catch (thrown) {
    const err = asSantokitError(thrown);
    const message = redactSecrets(err.message);
    scope.status.conditions = err.retryable
      ? markRetrying(scope.status.conditions, err.reason, message, scope.generation)
      : markStalled(scope.status.conditions, err.reason, message, scope.generation);
    throw err;
  } finally {
    await writeStatus(options, obj, scope.status);
  }
}

function makeScope<T extends Resource<unknown, S>, S extends CommonStatus>(obj: T, context: ReconcileContext): ReconcileScope<T, S> {
  const status = structuredClone(obj.status ?? {}) as S;
  return { obj, status, generation: obj.metadata.generation, context };
}

async function writeStatus<T extends Resource<unknown, S>, S extends CommonStatus>(options: SkeletonOptions<T, S>, obj: T, status: S): Promise<void> {
  status.observedGeneration = obj.metadata.generation;
  if (isDeepStrictEqual(status, obj.status ?? {})) return;
  // A diff, not the whole status: fields the reconcile removed must be sent as null to go away.
  const patch = { status: mergePatchOf(obj.status ?? {}, status) };
  await options.client.patch(options.kind, obj.metadata.name, obj.metadata.namespace, patch, { subresource: 'status', fieldManager: FIELD_MANAGER });
  const before = findCondition(obj.status, 'Ready');
  const after = findCondition(status, 'Ready');
  if (after && (before?.status !== after.status || before?.reason !== after.reason)) {
    await options.events.record(options.kind, obj as unknown as KubeObject, after.status === 'False' ? 'Warning' : 'Normal', after.reason, after.message);
  }
}

export async function removeFinalizer(client: KubeClient, kind: KindInfo, obj: KubeObject & { metadata: { finalizers?: string[] } }, finalizer: string): Promise<void> {
  await client.patch(kind, obj.metadata.name, obj.metadata.namespace, {
    metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer) },
  });
}
