import type postgres from 'postgres';
import type { Logger } from 'pino';
import type { Connection, Environment, Release } from '../../core/api/resources.ts';
import { NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { inlineReleaseContent, readReleaseContent, type ReleaseBody } from '../../core/release/content.ts';
import type { Informer } from '../../core/kube/informer.ts';
import type { ConnectionPools } from './pools.ts';
import { compileServedRelease, type ServedRelease } from './served-release.ts';

/**
 * What each environment serves, kept current by informers (never by polling): an Environment's
 * `status.currentRelease` names the Release to serve, its tables name connections, and each
 * Connection of that environment has a pool. A pointer move (apply, promote, rollback) is seen
 * as soon as the Environment's watch event arrives; the next request uses the new release.
 */

type Env = Environment & KubeObject;
type Rel = Release & KubeObject;
type Conn = Connection & KubeObject;

export interface Serving {
  readonly namespace: string;
  readonly environment: string;
  readonly release: ServedRelease;
}

export class ServingCatalog {
  /** `namespace/release` → its served form (releases are immutable) or why it cannot be served */
  private readonly compiled = new Map<string, ServedRelease | Error>();
  /** `namespace/environment/name` → Connection */
  private readonly connectionIndex = new Map<string, Conn>();
  /** `namespace/environment` → release id last logged as served */
  private readonly served = new Map<string, string>();
  private warmTimer: NodeJS.Timeout | undefined;
  /** Connection object → its pool, for the current object of each Connection */
  private opened = new WeakMap<Conn, Promise<postgres.Sql>>();
  /** `namespace/release` → reading the content of a chunked release (readChunked) */
  private readonly chunked = new Map<string, { reading?: true; body?: ReleaseBody; error?: Error; at: number }>();

  constructor(
    private readonly environments: Informer<Env>,
    private readonly releases: Informer<Rel>,
    private readonly connections: Informer<Conn>,
    private readonly pools: ConnectionPools,
    private readonly log: Logger,
    private readonly client?: KubeClient,
  ) {
    releases.on('delete', (r: Rel) => {
      this.compiled.delete(`${r.metadata.namespace}/${r.metadata.name}`);
      this.chunked.delete(`${r.metadata.namespace}/${r.metadata.name}`);
    });
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
    return { namespace, environment, release };
  }

  private release(namespace: string, id: string): ServedRelease | Error {
    const key = `${namespace}/${id}`;
    const cached = this.compiled.get(key);
    if (cached && !(cached instanceof Error)) return cached;
    const obj = this.releases.get(key);
    if (!obj) return new Error('the release is not loaded yet');
    let served: ServedRelease | Error;
    try {
      // A chunked release read and found unservable is not read again for every request.
      if (cached && obj.spec.content) return cached;
      const body = inlineReleaseContent(obj) ?? this.readChunked(key, obj);
      if (body instanceof Error) return body;
      served = compileServedRelease(id, body.schema, body.permissions);
    } catch (err) {
      served = err instanceof Error ? err : new Error(String(err));
    }
    this.compiled.set(key, served);
    return served;
  }

  /**
   * A chunked release's content, read in the background from its ConfigMaps and verified
   * (core/release/content.ts): an Error while it is being read, or for 5 s after a read failed
   * (a chunk not applied yet), then tried again. Handed over once; the compiled form is cached.
   */
  private readChunked(key: string, obj: Rel): ReleaseBody | Error {
    const state = this.chunked.get(key);
    if (state?.body) {
      this.chunked.delete(key);
      return state.body;
    }
    if (state?.reading) return new Error('its content is being read from its chunk ConfigMaps');
    if (state?.error && Date.now() - state.at < 5_000) return state.error;
    if (!this.client) return new Error('this data plane cannot read chunked releases (no Kubernetes client)');
    this.chunked.set(key, { reading: true, at: Date.now() });
    readReleaseContent(this.client, obj).then(
      (body) => this.chunked.set(key, { body, at: Date.now() }),
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        this.log.warn({ release: key, reason: (err as { reason?: string }).reason }, 'cannot read a chunked release yet');
        this.chunked.set(key, { error, at: Date.now() });
      },
    ).finally(() => this.scheduleWarm());
    return new Error('its content is being read from its chunk ConfigMaps');
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

  /** Loads each served release, opens pools ahead of traffic, and logs pointer moves. */
  private warm(): void {
    for (const env of this.environments.list()) {
      const current = env.status?.currentRelease;
      const where = `${env.metadata.namespace}/${env.metadata.name}`;
      if (!current) continue;
      const release = this.release(env.metadata.namespace!, current);
      if (release instanceof Error) continue;
      if (this.served.get(where) !== current) {
        this.log.info({ environment: where, release: current, previous: this.served.get(where) ?? null }, 'serving release');
        this.served.set(where, current);
      }
      for (const name of release.connections) {
        const conn = this.connectionIndex.get(connectionKey(env.metadata.namespace!, env.metadata.name, name));
        if (conn && !this.pools.has(conn)) {
          this.pools.get(conn).catch((err: unknown) => this.log.warn({ err, environment: where, connection: name }, 'cannot open the pool of a connection yet'));
        }
      }
    }
  }

  stop(): void {
    if (this.warmTimer) clearTimeout(this.warmTimer);
    this.warmTimer = undefined;
  }
}

function connectionKey(namespace: string, environment: string, name: string): string {
  return `${namespace}/${environment}/${name}`;
}
