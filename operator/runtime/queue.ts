/**
 * A work queue of keys (`namespace/name`) in the controller-runtime mould:
 * - a key waiting in the queue is never queued twice (duplicates collapse),
 * - a key is never handed out while it is being processed; adding it meanwhile marks it dirty
 *   and it is queued again when processing ends,
 * - delayed adds (requeue after N ms) and per-key jittered exponential backoff for failures.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** What a queue reports as it works (controller-runtime's `workqueue_*` figures). */
export interface QueueObserver {
  /** A key entered the queue (not collapsed into one already waiting). */
  added(): void;
  /** A failed key was re-added with backoff. */
  retried(): void;
  /** A key was handed to a worker after waiting `waitMs` in the queue. */
  started(waitMs: number): void;
  /** A worker finished a key after `workMs`. */
  finished(workMs: number): void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly backoff: BackoffPolicy = { baseMs: 100, maxMs: 60_000 },
    private readonly observer?: QueueObserver,
  ) {}

  get depth(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    const pending = this.delayed.get(key);
    if (pending) {
      clearTimeout(pending.timer);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.observer?.added();
    const waiter = this.waiters.shift();
    if (waiter) {
      this.begin(key, 0);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queuedAt.set(key, performance.now());
    this.queue.push(key);
  }

  private begin(key: string, waitMs: number): void {
    this.processing.add(key);
    this.startedAt.set(key, performance.now());
    this.observer?.started(waitMs);
  }

  /** Adds the key after `ms`; an earlier pending add for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Re-adds a failed key with jittered exponential backoff; returns the delay chosen. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.observer?.retried();
    const ceiling = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** n);
    const delay = Math.round(ceiling * (0.5 + Math.random() / 2));
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears a key's failure count after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Waits for the next key; undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      const at = this.queuedAt.get(key);
      this.queuedAt.delete(key);
      this.begin(key, at === undefined ? 0 : performance.now() - at);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks processing of a key finished; a key added meanwhile is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    const at = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (at !== undefined) this.observer?.finished(performance.now() - at);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Stops handing out keys; waiting `get` calls resolve with undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
  }
}
