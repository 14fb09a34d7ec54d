import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { apiVersionOf, type KindInfo } from '../api/resources.ts';
import { KubeClient, type KubeObject } from './client.ts';

/**
 * A list-then-watch cache of one kind that survives API server restarts:
 * - relists on 410 Gone (resource version too old) and after any watch failure,
 * - restarts the watch with jittered exponential backoff,
 * - notices a stalled watch (no event or bookmark for `stallAfterMs`) and restarts it,
 * - emits every object again each `resyncMs`, so level-based reconcilers re-check the world.
 *
 * Events: `upsert(obj)`, `delete(obj)`, `synced()`, `error(err)`, `relist()` and
 * `watchRestart(reason)` (the last three informational only; reasons: closed, error, expired, stalled).
 *
 * Cached objects never hold `metadata.managedFields` (nothing reads them from a cache, and they
 * can outweigh the rest of the metadata). With `metadataOnly` the cache holds only each object's
 * metadata (PartialObjectMetadata lists and watches): what a consumer needs when it only maps
 * keys, and fetches the full object (a GET) when it needs the spec.
 */
export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  resyncMs?: number;
  stallAfterMs?: number;
  watchTimeoutSeconds?: number;
  backoff?: { initialMs: number; maxMs: number };
  /**
   * Applied to every object before it is cached or emitted, e.g. to keep only the metadata of
   * Secrets (their values are then never held in memory).
   */
  transform?: (obj: KubeObject) => KubeObject;
  /** cache only metadata: the list and the watch ask the API server for PartialObjectMetadata */
  metadataOnly?: boolean;
}

export class Informer<T extends KubeObject = KubeObject> extends EventEmitter {
  private readonly store = new Map<string, T>();
  private resourceVersion = '';
  private abort: AbortController | undefined;
  private stopped = true;
  private failures = 0;
  private hasSynced = false;
  private lastActivity = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private failing: number | undefined;

  constructor(
    private readonly client: KubeClient,
    readonly kind: KindInfo,
    private readonly log: Logger,
    private readonly options: InformerOptions = {},
  ) {
    super();
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  /** Since when (epoch ms) lists and watches have been failing; undefined while the cache is being kept current. */
  get failingSince(): number | undefined {
    return this.failing;
  }

  private fail(err: unknown): void {
    this.failing ??= Date.now();
    this.emit('error', err);
  }

  /** Objects in the cache, keyed `namespace/name` (or `name` for cluster-scoped kinds). */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** How many objects the cache holds. */
  get size(): number {
    return this.store.size;
  }

  /** True when the cache holds metadata only. */
  get metadataOnly(): boolean {
    return Boolean(this.options.metadataOnly);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const resync = this.options.resyncMs ?? 5 * 60_000;
    const stallAfter = this.options.stallAfterMs ?? ((this.options.watchTimeoutSeconds ?? 240) + 60) * 1000;
    this.timers.push(setInterval(() => this.store.forEach((o) => this.emit('upsert', o)), resync).unref());
    this.timers.push(
      setInterval(() => {
        if (this.abort && Date.now() - this.lastActivity > stallAfter) {
          this.log.warn({ kind: this.kind.kind }, 'watch stalled; restarting');
          this.failing ??= this.lastActivity;
          this.emit('watchRestart', 'stalled');
          this.restart(true);
        }
      }, Math.min(stallAfter, 10_000)).unref(),
    );
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.abort?.abort();
    this.abort = undefined;
  }

  /** Resolves once the first list has been loaded. */
  waitForSync(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve) => this.once('synced', resolve));
  }

  private async relist(): Promise<void> {
    const gen = ++this.generation;
    this.emit('relist');
    try {
      const scope = {
        ...(this.options.namespace ? { namespace: this.options.namespace } : {}),
        ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
      };
      const { items, resourceVersion } = this.options.metadataOnly ? await this.client.listMetadata(this.kind, scope) : await this.client.list<T>(this.kind, scope);
      if (gen !== this.generation || this.stopped) return;
      this.failing = undefined;
      const seen = new Set<string>();
      for (const listed of items) {
        const item = this.cacheable(listed as KubeObject);
        const key = objectKey(item);
        seen.add(key);
        const old = this.store.get(key);
        this.store.set(key, item);
        if (!old || old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('upsert', item);
      }
      for (const [key, old] of this.store) {
        if (!seen.has(key)) {
          this.store.delete(key);
          this.emit('delete', old);
        }
      }
      this.resourceVersion = resourceVersion;
      if (!this.hasSynced) {
        this.hasSynced = true;
        this.emit('synced');
      }
      await this.startWatch(gen);
    } catch (err) {
      if (gen !== this.generation || this.stopped) return;
      this.fail(err);
      this.scheduleRestart(true);
    }
  }

  private async startWatch(gen: number): Promise<void> {
    this.lastActivity = Date.now();
    const query: Record<string, string | number | boolean | undefined> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: jitter(this.options.watchTimeoutSeconds ?? 240),
      labelSelector: this.options.labelSelector,
    };
    let needsRelist = false;
    this.abort = await this.client.watch(
      KubeClient.path(this.kind, this.options.namespace),
      query,
      (type, obj) => {
        if (gen !== this.generation) return;
        this.lastActivity = Date.now();
        this.failures = 0;
        if (type === 'ERROR') {
          // 410 Gone: our resource version is too old; anything else: start over too.
          needsRelist = true;
          this.emit('watchRestart', (obj as { code?: number }).code === 410 ? 'expired' : 'error');
          this.restart(true);
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        const seen = this.cacheable(obj);
        const key = objectKey(seen);
        if (type === 'DELETED') {
          this.store.delete(key);
          this.emit('delete', seen);
        } else {
          this.store.set(key, seen);
          this.emit('upsert', seen);
        }
      },
      (err) => {
        if (gen !== this.generation || this.stopped) return;
        if (err) this.fail(err);
        if (!needsRelist) this.emit('watchRestart', err ? 'error' : 'closed');
        // A normal close (server-side timeout) resumes from the last resource version.
        this.scheduleRestart(needsRelist || Boolean(err));
      },
      { metadataOnly: Boolean(this.options.metadataOnly) },
    );
  }

  /** What is kept of a listed or watched object: no managedFields; with metadataOnly, the kind and metadata only. */
  private cacheable(obj: KubeObject): T {
    const { managedFields: _dropped, ...metadata } = obj.metadata;
    const kept: KubeObject = this.options.metadataOnly
      ? { apiVersion: apiVersionOf(this.kind), kind: this.kind.kind, metadata }
      : { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(this.kind), kind: obj.kind ?? this.kind.kind, metadata };
    return (this.options.transform ? this.options.transform(kept) : kept) as T;
  }

  private restart(relist: boolean): void {
    this.abort?.abort();
    this.abort = undefined;
    this.scheduleRestart(relist);
  }

  private scheduleRestart(relist: boolean): void {
    if (this.stopped) return;
    const gen = ++this.generation;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 200, maxMs: 10_000 };
    const delay = relist ? Math.min(maxMs, initialMs * 2 ** this.failures++) * (0.5 + Math.random() / 2) : 0;
    this.restartTimer = setTimeout(() => {
      if (gen !== this.generation || this.stopped) return;
      if (relist) void this.relist();
      else void this.startWatch(gen).catch(() => this.scheduleRestart(true));
    }, delay);
  }
}

/** `namespace/name` or `name`: the work-queue key of an object. */
export function objectKey(obj: { metadata: { name: string; namespace?: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

function jitter(seconds: number): number {
  return Math.round(seconds * (0.8 + Math.random() * 0.4));
}
