import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Informer } from '../../core/kube/informer.ts';
import type { QueueObserver } from './queue.ts';

/**
 * `santokit_informer_cached_objects{kind,content}`: the objects each informer holds, `content`
 * saying whether whole objects (`full`) or only their metadata (`metadata`). Read at each scrape;
 * shared by the operator and the data plane.
 */
export function registerInformerCacheGauge(registry: Registry, informers: () => Iterable<Informer>): Gauge {
  const gauge: Gauge = new Gauge({
    name: 'santokit_informer_cached_objects',
    help: 'Objects held by the informers, by kind and content (full objects or metadata only)',
    labelNames: ['kind', 'content'] as const,
    registers: [registry],
    collect: () => {
      gauge.reset();
      for (const inf of informers()) gauge.inc({ kind: inf.kind.kind, content: inf.metadataOnly ? 'metadata' : 'full' }, inf.size);
    },
  });
  return gauge;
}

/** The operator's Prometheus metrics, in one registry served on /metrics. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'santokit_reconcile_total',
    help: 'Reconciles by controller and result (success, requeue, error, terminal)',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'santokit_reconcile_errors_total',
    help: 'Reconciles that threw, by controller',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'santokit_reconcile_duration_seconds',
    help: 'Duration of reconciles by controller',
    labelNames: ['controller'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly depthOf = new Map<string, () => number>();
  // Both depth gauges are read at scrape time: delayed adds and re-adds after processing change the depth too.
  readonly queueDepth = new Gauge({
    name: 'santokit_workqueue_depth',
    help: 'Keys waiting in the work queue, by controller',
    labelNames: ['controller'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [controller, depth] of this.depthOf) this.queueDepth.set({ controller }, depth());
    },
  });
  // controller-runtime's work-queue figures, under its names, labelled by controller (`name`).
  readonly workqueueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of the work queue',
    labelNames: ['name'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [name, depth] of this.depthOf) this.workqueueDepth.set({ name }, depth());
    },
  });
  readonly workqueueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Keys added to the work queue (duplicates of a waiting key collapse and do not count)',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly workqueueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Keys re-added with backoff after a failed reconcile',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly workqueueQueueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long a key waits in the work queue before a worker takes it',
    labelNames: ['name'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly workqueueWorkDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long processing a key takes',
    labelNames: ['name'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly informerRelists = new Counter({
    name: 'santokit_informer_relists_total',
    help: 'Full lists by informer kind (the first list and every relist after a failure or 410 Gone)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly informerWatchRestarts = new Counter({
    name: 'santokit_informer_watch_restarts_total',
    help: 'Watch restarts by informer kind and reason (closed: server-side timeout, error, expired: 410 Gone, stalled)',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'santokit_leader',
    help: '1 while this replica holds the leader lease',
    registers: [this.registry],
  });

  constructor() {
    // Standard names (process_resident_memory_bytes, nodejs_heap_size_used_bytes,
    // nodejs_eventloop_lag_seconds …), as every Node.js dashboard expects them.
    collectDefaultMetrics({ register: this.registry });
  }

  /** The observer a controller's work queue reports to; `depth` is read at each scrape. */
  queueObserver(controller: string, depth: () => number): QueueObserver {
    this.depthOf.set(controller, depth);
    const labels = { name: controller };
    return {
      added: () => this.workqueueAdds.inc(labels),
      retried: () => this.workqueueRetries.inc(labels),
      started: (waitMs) => this.workqueueQueueDuration.observe(labels, waitMs / 1000),
      finished: (workMs) => this.workqueueWorkDuration.observe(labels, workMs / 1000),
    };
  }
}
