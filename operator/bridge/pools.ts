import postgres from 'postgres';
import type { Logger } from 'pino';
import type { Connection } from '../../core/api/resources.ts';
import { UnavailableError, isSantokitError } from '../../core/errors.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { parseDatabaseUrl, type Databases } from '../databases.ts';

/**
 * One bounded porsager pool per Connection for the data plane. URLs are resolved through
 * `Databases.resolveUrl` (sealed value or Secret), so the bridge opens the same sealed values the
 * operator does. A pool is replaced when its Connection's spec changes (rotation) and closed
 * when the Connection goes. Unlike the operator's pools these carry a statement timeout and an
 * application name, because they serve untrusted traffic.
 */

type Conn = Connection & KubeObject;

export interface PoolOptions {
  /** connections per pool */
  readonly max: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutSeconds: number;
}

export const defaultPoolOptions: PoolOptions = { max: 10, statementTimeoutMs: 15_000, connectTimeoutSeconds: 5 };

interface Entry {
  readonly version: string;
  readonly sql: Promise<postgres.Sql>;
}

export class ConnectionPools {
  private readonly pools = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly databases: Pick<Databases, 'resolveUrl'>,
    private readonly log: Logger,
    private readonly options: PoolOptions = defaultPoolOptions,
  ) {}

  /** The pool of a connection, opened on first use; a changed spec gets a new pool. */
  get(conn: Conn): Promise<postgres.Sql> {
    if (this.closed) return Promise.reject(new UnavailableError('the data plane is shutting down', { reason: 'ShuttingDown' }));
    const key = `${conn.metadata.namespace}/${conn.metadata.name}`;
    const version = JSON.stringify(conn.spec);
    const existing = this.pools.get(key);
    if (existing && existing.version === version) return existing.sql;
    if (existing) this.retire(key, existing);
    const sql = this.open(conn);
    const entry: Entry = { version, sql };
    this.pools.set(key, entry);
    // A failed open is forgotten, so the next call tries again (the Secret may appear later).
    sql.catch(() => {
      if (this.pools.get(key) === entry) this.pools.delete(key);
    });
    return sql;
  }

  /** True when the connection has an open pool for its current spec. */
  has(conn: Conn): boolean {
    return this.pools.get(`${conn.metadata.namespace}/${conn.metadata.name}`)?.version === JSON.stringify(conn.spec);
  }

  private async open(conn: Conn): Promise<postgres.Sql> {
    let url: string;
    try {
      url = await this.databases.resolveUrl(conn);
      parseDatabaseUrl(url);
    } catch (err) {
      const reason = isSantokitError(err) ? err.reason : 'ConnectionFailed';
      throw new UnavailableError(`connection ${conn.spec.name} of environment ${conn.spec.environment} cannot be opened (${reason})`, { reason: 'ConnectionUnavailable', cause: err });
    }
    this.log.debug({ connection: `${conn.metadata.namespace}/${conn.metadata.name}` }, 'opening pool');
    return postgres(url, {
      max: this.options.max,
      connect_timeout: this.options.connectTimeoutSeconds,
      idle_timeout: 60,
      max_lifetime: 30 * 60,
      prepare: true,
      onnotice: () => {},
      connection: { application_name: 'santokit-bridge', statement_timeout: this.options.statementTimeoutMs },
    });
  }

  private retire(key: string, entry: Entry): void {
    this.pools.delete(key);
    void entry.sql.then((sql) => sql.end({ timeout: 5 })).catch(() => {});
  }

  /** Closes the pool of a deleted connection (`namespace/name`). */
  forget(key: string): void {
    const entry = this.pools.get(key);
    if (entry) this.retire(key, entry);
  }

  /** Closes every pool, letting in-flight queries finish within `timeoutSeconds`. */
  async close(timeoutSeconds = 5): Promise<void> {
    this.closed = true;
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((e) => e.sql.then((sql) => sql.end({ timeout: timeoutSeconds })).catch(() => {})));
  }
}
