import { markReady, markRetrying, setCondition } from '../../core/api/conditions.ts';
import { Annotations, Kinds, type Connection, type ConnectionStatus } from '../../core/api/resources.ts';
import { asSantokitError } from '../../core/errors.ts';
import type { KubeClient } from '../../core/kube/client.ts';
import { redactSecrets } from '../../core/redact.ts';
import { ConnectionReason, describeTarget, probeDatabase, type Databases } from '../databases.ts';
import type { ReconcileContext, ReconcileRequest, Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus } from '../runtime/skeleton.ts';

export const ReachableCondition = 'Reachable';

/**
 * Opens the connection's URL (sealed value or Secret), connects, authenticates and runs a query;
 * reports `Reachable` with the last tested time and a named reason, and re-probes periodically.
 * A new value of the `santokit.io/probe` annotation asks for a probe now; it is echoed in
 * `status.probe` once answered.
 */
export class ConnectionReconciler implements Reconciler {
  readonly name = 'connection';
  readonly kind = Kinds.Connection;

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly databases: Databases,
    private readonly reprobeMs: number,
  ) {}

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Connection, ConnectionStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      gone: () => this.databases.forget(request.key),
      work: async ({ obj, status, generation }) => {
        const probeRequest = obj.metadata.annotations?.[Annotations.probe];
        const last = status.lastTestedTime ? Date.parse(status.lastTestedTime) : 0;
        const fresh = generation === status.observedGeneration && probeRequest === status.probe && Date.now() - last < this.reprobeMs * 0.9;
        if (fresh) return { requeueAfterMs: Math.max(1_000, last + this.reprobeMs - Date.now()) };

        const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
        try {
          const url = await this.databases.resolveUrl(obj);
          status.target = describeTarget(url);
          await probeDatabase(url);
          status.conditions = setCondition(status.conditions, { type: ReachableCondition, status: 'True', reason: ConnectionReason.Reachable, message: `connected and authenticated to ${status.target}` }, generation);
          status.conditions = markReady(status.conditions, ConnectionReason.Reachable, `connected and authenticated to ${status.target}`, generation);
        } catch (thrown) {
          const err = asSantokitError(thrown);
          const message = redactSecrets(err.message);
          context.log.info({ reason: err.reason }, 'connection probe failed');
          status.conditions = setCondition(status.conditions, { type: ReachableCondition, status: 'False', reason: err.reason, message }, generation);
          status.conditions = markRetrying(status.conditions, err.reason, message, generation);
        }
        status.lastTestedTime = now;
        if (probeRequest !== undefined) status.probe = probeRequest;
        return { requeueAfterMs: this.reprobeMs };
      },
    });
  }
}
