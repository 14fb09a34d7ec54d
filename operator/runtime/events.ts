import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { apiVersionOf, type KindInfo } from '../../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { redactSecrets } from '../../core/redact.ts';

const EventKind: KindInfo = { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };

export type EventType = 'Normal' | 'Warning';

/**
 * Records Kubernetes Events (core/v1) on state changes. A repeat of the same event on the same
 * object bumps its count instead of creating another. Messages are scrubbed of secrets.
 * Failing to record an event never fails a reconcile.
 */
export class EventRecorder {
  private readonly recent = new Map<string, { name: string; namespace: string; count: number }>();

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly log: Logger,
  ) {}

  async record(kind: KindInfo, obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    // Events about cluster-scoped objects must live in `default` (API validation).
    const namespace = obj.metadata.namespace ?? 'default';
    const text = redactSecrets(message);
    const dedupKey = `${obj.metadata.uid}|${type}|${reason}|${text}`;
    const now = new Date().toISOString();
    try {
      const seen = this.recent.get(dedupKey);
      if (seen) {
        seen.count++;
        await this.client.patch(EventKind, seen.name, seen.namespace, { count: seen.count, lastTimestamp: now });
        return;
      }
      const name = `${obj.metadata.name}.${randomBytes(8).toString('hex')}`;
      await this.client.create(EventKind, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: apiVersionOf(kind),
          kind: kind.kind,
          name: obj.metadata.name,
          namespace: obj.metadata.namespace,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        type,
        reason,
        message: text,
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
      if (this.recent.size > 1000) this.recent.clear();
      this.recent.set(dedupKey, { name, namespace, count: 1 });
    } catch (err) {
      this.recent.delete(dedupKey);
      this.log.warn({ err, reason }, 'could not record event');
    }
  }
}
