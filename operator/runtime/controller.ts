import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { KindInfo } from '../../core/api/resources.ts';
import { asSantokitError } from '../../core/errors.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import type { OperatorMetrics } from './metrics.ts';
import { WorkQueue } from './queue.ts';

/** What a reconcile asks for next: nothing (done) or another look after some time. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ReconcileRequest {
  key: string;
  namespace?: string;
  name: string;
}

export interface ReconcileContext {
  /** child logger carrying the controller, the key and a reconcile id */
  log: Logger;
  reconcileId: string;
}

/**
 * A reconciler is level-based: it gets a key, never an event, and brings the world in line with
 * the object's current spec. It returns done / requeue-after, or throws: an error that is not
 * retryable is terminal (the reconciler records it in status; it is not retried until the
 * object changes), anything else is retried with jittered exponential backoff.
 */
export interface Reconciler {
  readonly name: string;
  readonly kind: KindInfo;
  reconcile(request: ReconcileRequest, context: ReconcileContext): Promise<ReconcileResult | void>;
}

/** A secondary watch: when an object of `kind` changes, which keys of the primary kind to enqueue. */
export interface WatchMapping {
  kind: KindInfo;
  map(obj: KubeObject): string[];
}

export class Controller {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  private running = false;

  constructor(
    readonly reconciler: Reconciler,
    private readonly log: Logger,
    private readonly metrics: OperatorMetrics,
    private readonly concurrency: number,
  ) {
    this.queue = new WorkQueue(undefined, metrics.queueObserver(reconciler.name, () => this.queue.depth));
  }

  get name(): string {
    return this.reconciler.name;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work());
  }

  /** Stops taking keys and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    this.workers = [];
    this.running = false;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const request: ReconcileRequest = slash < 0 ? { key, name: key } : { key, namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    const reconcileId = randomUUID();
    const log = this.log.child({ controller: this.name, key, reconcileId });
    const stopTimer = this.metrics.reconcileDuration.startTimer({ controller: this.name });
    try {
      const result = await this.reconciler.reconcile(request, { log, reconcileId });
      log.debug({ requeueAfterMs: result?.requeueAfterMs }, 'reconciled');
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, result.requeueAfterMs);
        this.metrics.reconciles.inc({ controller: this.name, result: 'requeue' });
      } else {
        this.metrics.reconciles.inc({ controller: this.name, result: 'success' });
      }
    } catch (thrown) {
      // Reconcile errors (including panics in our own code) never take the worker down.
      const err = asSantokitError(thrown);
      this.metrics.reconcileErrors.inc({ controller: this.name });
      if (err.retryable) {
        const delay = this.queue.addRateLimited(key);
        log.warn({ err, retryInMs: delay }, 'reconcile failed; will retry');
        this.metrics.reconciles.inc({ controller: this.name, result: 'error' });
      } else {
        this.queue.forget(key);
        log.info({ err }, 'reconcile failed terminally; waiting for a change');
        this.metrics.reconciles.inc({ controller: this.name, result: 'terminal' });
      }
    } finally {
      stopTimer();
    }
  }
}
