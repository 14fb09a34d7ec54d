import postgres from 'postgres';
import type { Logger } from 'pino';
import type { Connection } from '../../core/api/resources.ts';
import { UnavailableError } from '../../core/errors.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { readDataPlaneCredential } from '../data-plane-role.ts';
import { parseDatabaseUrl } from '../databases.ts';
import type { SecretObject } from './project-secrets.ts';

/**
 * One bounded porsager pool per Connection for the data plane. The data plane never opens the
 * sealed owner URL (it holds no sealing key): it connects with the per-connection database role
 * the operator creates (DML on the managed tables only), whose URL the operator writes into the
 * Secret `santokit-dataplane-<connection>` of the project namespace (see data-plane-role.ts). A
 * pool is replaced when that Secret or the Connection changes and closed when the Connection
 * goes. Unlike the operator's pools these carry a statement timeout and an application name,
 * because they serve untrusted traffic.
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
    /** the cached data-plane credential Secret of a Connection (`namespace`, Secret name) */
    private readonly credentialSecret: (namespace: string, name: string) => SecretObject | undefined,
    private readonly log: Logger,
    private readonly options: PoolOptions = defaultPoolOptions,
  ) {}

  /** The pool of a connection, opened on first use; a changed spec gets a new pool. */
  get(conn: Conn): Promise<postgres.Sql> {
    if (this.closed) return Promise.reject(new UnavailableError('the data plane is shutting down', { reason: 'ShuttingDown' }));
    const key = `${conn.metadata.namespace}/${conn.metadata.name}`;
    const credential = this.credential(conn);
    const version = credential instanceof Error ? '' : credential.version;
    const existing = this.pools.get(key);
    if (existing && existing.version === version) return existing.sql;
    if (existing) this.retire(key, existing);
    const sql = credential instanceof Error ? Promise.reject(credential) : this.open(conn, credential.url());
    const entry: Entry = { version, sql };
    this.pools.set(key, entry);
    // A failed open is forgotten, so the next call tries again (the Secret may appear later).
    sql.catch(() => {
      if (this.pools.get(key) === entry) this.pools.delete(key);
    });
    return sql;
  }

  /** True when the connection has an open pool for its current credential. */
  has(conn: Conn): boolean {
    const credential = this.credential(conn);
    return !(credential instanceof Error) && this.pools.get(`${conn.metadata.namespace}/${conn.metadata.name}`)?.version === credential.version;
  }

  /** The data-plane URL of a connection and a version that changes with it, or why there is none. */
  private credential(conn: Conn): { version: string; url: () => string } | UnavailableError {
    const found = readDataPlaneCredential(conn, this.credentialSecret);
    if (found) return found;
    return new UnavailableError(`connection ${conn.spec.name} of environment ${conn.spec.environment} cannot be opened (its data-plane credential is not there yet)`, { reason: 'ConnectionUnavailable' });
  }

  private async open(conn: Conn, url: string): Promise<postgres.Sql> {
    try {
      parseDatabaseUrl(url);
    } catch (err) {
      throw new UnavailableError(`connection ${conn.spec.name} of environment ${conn.spec.environment} cannot be opened (InvalidURL)`, { reason: 'ConnectionUnavailable', cause: err });
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
