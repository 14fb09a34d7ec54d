import type postgres from 'postgres';
import type { Logger } from 'pino';
import type { Connection, Environment } from '../../core/api/resources.ts';
import { isSantokitError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { KubeClient, KubeObject, PartialObject } from '../../core/kube/client.ts';
import type { Informer } from '../../core/kube/informer.ts';
import { readReleaseContent } from '../../core/release/content.ts';
import { fetchRelease } from '../release-store.ts';
import type { ConnectionPools } from './pools.ts';
import { compileServedRelease, type ServedRelease } from './served-release.ts';

/**
 * What each environment serves, kept current by informers (never by polling): an Environment's
 * `status.currentRelease` names the Release to serve, its tables name connections, and each
 * Connection of that environment has a pool. A pointer move (apply, promote, rollback) is seen
 * as soon as the Environment's watch event arrives; the next request uses the new release.
 *
 * Releases are watched as metadata only. The full Release is fetched (one GET) for the release
 * each environment serves and the one its spec asks for (the one it is about to serve, fetched
 * while the operator applies it), and only its compiled form is kept, in a cache bounded by
 * count and bytes: when it is over either bound, the least recently served releases no
 * environment serves or asks for are evicted first. Releases in use are never evicted.
 */

type Env = Environment & KubeObject;
type Conn = Connection & KubeObject;

export interface Serving {
  readonly namespace: string;
  readonly environment: string;
  readonly release: ServedRelease;
}

/** Bounds of the compiled-release cache (releases in use are kept past them). */
export interface ReleaseCacheLimits {
  readonly maxEntries: number;
  /** bytes of the releases' content as JSON, the measure of what their compiled forms hold */
  readonly maxBytes: number;
}

export const defaultReleaseCacheLimits: ReleaseCacheLimits = { maxEntries: 64, maxBytes: 64 * 1024 * 1024 };

/** First retry of a failed fetch; doubles up to the maximum. */
const fetchRetryMs = { initial: 500, max: 30_000 };

interface CacheEntry {
  /** the served form, or why the release cannot be served (releases are immutable: both are final) */
  readonly served: ServedRelease | Error;
  readonly bytes: number;
}

/** What the cache holds, for /metrics. */
export interface ReleaseCacheStats {
  entries: number;
  bytes: number;
  /** entries some environment serves or asks for */
  inUse: number;
  evictions: number;
  fetches: number;
  fetchFailures: number;
}

export class ServingCatalog {
  /** `namespace/release` → compiled form; Map order is least recently used first */
  private readonly compiled = new Map<string, CacheEntry>();
  private bytes = 0;
  /** `namespace/release` of the releases some environment serves or asks for (recomputed by warm) */
  private inUse = new Set<string>();
  /** fetches in flight */
  private readonly loading = new Map<string, Promise<void>>();
  /** `namespace/release` → why its last fetch failed and how often in a row */
  private readonly failures = new Map<string, { message: string; count: number; retryAt: number }>();
  private readonly counts = { evictions: 0, fetches: 0, fetchFailures: 0 };
  /** `namespace/environment/name` → Connection */
  private readonly connectionIndex = new Map<string, Conn>();
  /** `namespace/environment` → release id last logged as served */
  private readonly served = new Map<string, string>();
  private warmTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Connection object → its pool, for the current object of each Connection */
  private opened = new WeakMap<Conn, Promise<postgres.Sql>>();

  constructor(
    private readonly client: KubeClient,
    private readonly environments: Informer<Env>,
    private readonly releases: Informer<PartialObject & KubeObject>,
    private readonly connections: Informer<Conn>,
    private readonly pools: ConnectionPools,
    private readonly log: Logger,
    private readonly limits: ReleaseCacheLimits = defaultReleaseCacheLimits,
  ) {
    releases.on('delete', (r: PartialObject) => this.drop(`${r.metadata.namespace}/${r.metadata.name}`));
    connections.on('upsert', (c: Conn) => {
      for (const [key, existing] of this.connectionIndex) if (existing.metadata.name === c.metadata.name && existing.metadata.namespace === c.metadata.namespace) this.connectionIndex.delete(key);
      this.connectionIndex.set(connectionKey(c.metadata.namespace!, c.spec.environment, c.spec.name), c);
      this.scheduleWarm();
    });
    connections.on('delete', (c: Conn) => {
      this.opened = new WeakMap();
      this.connectionIndex.delete(connectionKey(c.metadata.namespace!, c.spec.environment, c.spec.name));
      this.pools.forget(`${c.metadata.namespace}/${c.metadata.name}`);
    });
    environments.on('upsert', () => this.scheduleWarm());
    environments.on('delete', (e: Env) => this.served.delete(`${e.metadata.namespace}/${e.metadata.name}`));
    // A Release an environment names may appear after the Environment (GitOps): fetch it then.
    releases.on('upsert', () => this.scheduleWarm());
  }

  /** The Environment object, if the informer has it. */
  environment(namespace: string, name: string): Env | undefined {
    return this.environments.get(`${namespace}/${name}`);
  }

  /** What an environment serves right now; 404 when it has no release yet, 503 while loading. */
  resolve(namespace: string, environment: string): Serving {
    const env = this.environment(namespace, environment);
    if (!env) throw new NotFoundError(`environment ${environment} does not exist`, { reason: 'EnvironmentNotFound' });
    const current = env.status?.currentRelease;
    if (!current) throw new NotFoundError(`environment ${environment} has no release yet`, { reason: 'NoCurrentRelease', hint: 'apply one with `stk apply`' });
    const release = this.release(namespace, current);
    if (release instanceof Error) throw new UnavailableError(`release ${current} of environment ${environment} cannot be served: ${release.message}`, { reason: 'ReleaseNotLoaded' });
    // A pointer move is logged before the first call it answers (warm logs it too, a moment later, if no call comes).
    this.noteServed(`${namespace}/${environment}`, current);
    return { namespace, environment, release };
  }

  /** Logs `serving release` once per pointer move of an environment (`namespace/environment`). */
  private noteServed(where: string, release: string): void {
    const previous = this.served.get(where);
    if (previous === release) return;
    this.log.info({ environment: where, release, previous: previous ?? null }, 'serving release');
    this.served.set(where, release);
  }

  /** The compiled release, or why it is not there (a fetch is then started). */
  private release(namespace: string, id: string): ServedRelease | Error {
    const entry = this.compiled.get(`${namespace}/${id}`);
    if (entry) return entry.served;
    void this.load(namespace, id);
    const failed = this.failures.get(`${namespace}/${id}`);
    return new Error(failed ? `the release cannot be read yet (${failed.message})` : 'the release is not loaded yet');
  }

  /** Fetches and compiles one release (once at a time); a failed fetch is retried with backoff. */
  private load(namespace: string, id: string): Promise<void> {
    const key = `${namespace}/${id}`;
    if (this.stopped || this.compiled.has(key)) return Promise.resolve();
    const failed = this.failures.get(key);
    if (failed && failed.retryAt > Date.now()) return Promise.resolve();
    let running = this.loading.get(key);
    if (running) return running;
    running = (async () => {
      this.counts.fetches++;
      let obj: Awaited<ReturnType<typeof fetchRelease>>;
      try {
        obj = await fetchRelease(this.client, namespace, id);
      } catch (err) {
        this.fetchFailed(key, isSantokitError(err) ? err.message : String(err));
        return;
      }
      // Not there (yet): the Release's watch event starts another fetch once it exists.
      if (!obj) return void this.failures.delete(key);
      this.failures.delete(key);
      // Deleted while we fetched (its watch event came first): nothing to keep.
      if (this.stopped || (this.releases.synced && !this.releases.get(key))) return;
      let served: ServedRelease | Error;
      let bytes = 0;
      try {
        // The Release's content (schema and permissions) as the data plane serves it.
        const content = await readReleaseContent(this.client, obj);
        served = compileServedRelease(id, content.schema, content.permissions);
        bytes = contentBytes(content);
      } catch (err) {
        // Reading the content may fail for a while (retryable): try again. Content that cannot be served is final.
        if (isSantokitError(err) && err.retryable) return this.fetchFailed(key, err.message);
        served = err instanceof Error ? err : new Error(String(err));
      }
      this.compiled.set(key, { served, bytes });
      this.bytes += bytes;
      this.evict();
      this.scheduleWarm();
    })().finally(() => this.loading.delete(key));
    this.loading.set(key, running);
    return running;
  }

  private fetchFailed(key: string, message: string): void {
    this.counts.fetchFailures++;
    const count = (this.failures.get(key)?.count ?? 0) + 1;
    const delay = Math.min(fetchRetryMs.max, fetchRetryMs.initial * 2 ** (count - 1));
    this.failures.set(key, { message, count, retryAt: Date.now() + delay });
    this.log.warn({ release: key, retryInMs: delay, err: message }, 'cannot fetch a release yet');
    if (!this.retryTimer && !this.stopped) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.warm();
      }, delay);
      this.retryTimer.unref();
    }
  }

  private drop(key: string): void {
    const entry = this.compiled.get(key);
    if (!entry) return;
    this.compiled.delete(key);
    this.bytes -= entry.bytes;
  }

  /** Over a bound: evict the least recently used releases no environment serves or asks for. */
  private evict(): void {
    if (this.compiled.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) return;
    for (const key of [...this.compiled.keys()]) {
      if (this.compiled.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) return;
      if (this.inUse.has(key)) continue;
      this.drop(key);
      this.counts.evictions++;
    }
  }

  /** What the compiled-release cache holds (read at each scrape). */
  get cacheStats(): ReleaseCacheStats {
    let inUse = 0;
    for (const key of this.compiled.keys()) if (this.inUse.has(key)) inUse++;
    return { entries: this.compiled.size, bytes: this.bytes, inUse, ...this.counts };
  }

  /** The pool of the connection a table of `serving` lives in. */
  pool(serving: Serving, connection: string): Promise<postgres.Sql> {
    const conn = this.connectionIndex.get(connectionKey(serving.namespace, serving.environment, connection));
    if (!conn) return Promise.reject(new UnavailableError(`environment ${serving.environment} has no connection ${connection}`, { reason: 'ConnectionMissing' }));
    // The informer hands out a new object for every change of a Connection, so an opened pool
    // can be remembered per object: no comparison of specs on every call.
    const known = this.opened.get(conn);
    if (known) return known;
    const sql = this.pools.get(conn);
    this.opened.set(conn, sql);
    sql.catch(() => this.opened.delete(conn));
    return sql;
  }

  get synced(): boolean {
    return this.environments.synced && this.releases.synced && this.connections.synced;
  }

  /** Every environment with a current release has it loaded and a Connection for each of its databases. */
  readiness(): string[] {
    if (!this.synced) return ['watches are not synced yet'];
    const why: string[] = [];
    for (const env of this.environments.list()) {
      const current = env.status?.currentRelease;
      if (!current) continue;
      const where = `${env.metadata.namespace}/${env.metadata.name}`;
      const release = this.release(env.metadata.namespace!, current);
      if (release instanceof Error) {
        why.push(`${where}: release ${current}: ${release.message}`);
        continue;
      }
      for (const name of release.connections) {
        if (!this.connectionIndex.has(connectionKey(env.metadata.namespace!, env.metadata.name, name))) why.push(`${where}: connection ${name} not found`);
      }
    }
    return why;
  }

  /** How many environments currently serve a release. */
  get servedCount(): number {
    return this.environments.list().filter((e) => e.status?.currentRelease).length;
  }

  private scheduleWarm(): void {
    if (this.warmTimer) return;
    this.warmTimer = setTimeout(() => {
      this.warmTimer = undefined;
      this.warm();
    }, 50);
    this.warmTimer.unref();
  }

  /**
   * Loads each served release and each release an environment's spec asks for, marks them in use
   * (most recently used last), opens pools ahead of traffic, and logs pointer moves.
   */
  private warm(): void {
    if (this.stopped) return;
    const inUse = new Set<string>();
    for (const env of this.environments.list()) {
      for (const id of [env.spec.release, env.status?.currentRelease]) {
        if (!id) continue;
        const key = `${env.metadata.namespace}/${id}`;
        inUse.add(key);
        const entry = this.compiled.get(key);
        if (entry) {
          this.compiled.delete(key);
          this.compiled.set(key, entry);
        } else if (this.releases.get(key)) {
          void this.load(env.metadata.namespace!, id);
        }
      }
    }
    this.inUse = inUse;
    this.evict();
    for (const env of this.environments.list()) {
      const current = env.status?.currentRelease;
      const where = `${env.metadata.namespace}/${env.metadata.name}`;
      if (!current) continue;
      const release = this.compiled.get(`${env.metadata.namespace}/${current}`)?.served;
      if (!release) continue;
      if (release instanceof Error) continue;
      this.noteServed(where, current);
      for (const name of release.connections) {
        const conn = this.connectionIndex.get(connectionKey(env.metadata.namespace!, env.metadata.name, name));
        if (conn && !this.pools.has(conn)) {
          this.pools.get(conn).catch((err: unknown) => this.log.warn({ err, environment: where, connection: name }, 'cannot open the pool of a connection yet'));
        }
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.warmTimer) clearTimeout(this.warmTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.warmTimer = undefined;
    this.retryTimer = undefined;
  }
}

/** Bytes of a Release's content as JSON: what the cache bound counts. */
function contentBytes(spec: { schema?: unknown; permissions?: unknown }): number {
  return Buffer.byteLength(JSON.stringify(spec.schema ?? null)) + Buffer.byteLength(JSON.stringify(spec.permissions ?? null));
}

function connectionKey(namespace: string, environment: string, name: string): string {
  return `${namespace}/${environment}/${name}`;
}
