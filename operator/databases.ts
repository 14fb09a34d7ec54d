import postgres from 'postgres';
import type { Logger } from 'pino';
import { Kinds, type Connection } from '../core/api/resources.ts';
import { ConflictError, NotFoundError, UnavailableError, ValidationError, type SantokitError } from '../core/errors.ts';
import type { KubeClient, KubeObject } from '../core/kube/client.ts';
import { SUPPORTED_PG_MAJORS } from '../core/schema/index.ts';
import { connectionBindings } from '../core/sealing.ts';
import { SealingKeyring } from './sealing-keys.ts';

/** Named reasons for connection failures: what `stk connections test` prints. */
export const ConnectionReason = {
  Reachable: 'Reachable',
  DNSFailed: 'DNSFailed',
  ConnectionRefused: 'ConnectionRefused',
  Timeout: 'Timeout',
  AuthenticationFailed: 'AuthenticationFailed',
  DatabaseNotFound: 'DatabaseNotFound',
  InvalidURL: 'InvalidURL',
  SecretNotFound: 'SecretNotFound',
  SealedValueInvalid: 'SealedValueInvalid',
  ConnectionFailed: 'ConnectionFailed',
  UnsupportedVersion: 'UnsupportedPostgresVersion',
} as const;

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

/**
 * The label a Secret must carry before a Connection's `secretRef` may name it. Anyone who may write
 * Connections (a deployer, who may not read Secrets) could otherwise point one at any Secret of
 * the namespace and learn from status or errors what it holds; the label is the Secret owner's
 * explicit grant. Without it the Secret is treated as missing (same reason, same message).
 */
export const CONNECTION_SECRET_LABEL = 'santokit.io/connection-secret';

/** host:port/database of a URL: what may be shown of it. Never the user's password. */
export function describeTarget(url: string): string {
  const u = parseDatabaseUrl(url);
  return `${u.hostname}:${u.port || '5432'}${u.pathname || '/'}`;
}

export function parseDatabaseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError('the database URL is not a valid URL', [], { reason: ConnectionReason.InvalidURL });
  }
  // Never echo any part of the value: it may come from a Secret.
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new ValidationError('the database URL must start with postgres://', [], { reason: ConnectionReason.InvalidURL });
  if (!u.hostname) throw new ValidationError('the database URL has no host', [], { reason: ConnectionReason.InvalidURL });
  return u;
}

/**
 * Turns Connections into database URLs (opening sealed values with the operator's key or reading
 * the referenced Secret) and keeps one bounded pool per connection, replaced when the connection
 * changes and closed on shutdown.
 */
export class Databases {
  private readonly keyring: SealingKeyring;
  private readonly pools = new Map<string, { version: string; sql: postgres.Sql }>();

  constructor(
    private readonly client: KubeClient,
    operatorNamespace: string,
    private readonly log: Logger,
    private readonly maxPoolSize = 5,
  ) {
    this.keyring = new SealingKeyring(client, operatorNamespace);
  }

  /** The URL of a connection. Never log or print it. */
  async resolveUrl(conn: Connection): Promise<string> {
    const namespace = conn.metadata.namespace!;
    if (conn.spec.sealedUrl) {
      return this.keyring.open(conn.spec.sealedUrl, connectionBindings({ namespace, objectName: conn.metadata.name, environment: conn.spec.environment, name: conn.spec.name }));
    }
    const ref = conn.spec.secretRef;
    if (!ref) throw new ValidationError('the connection has neither sealedUrl nor secretRef');
    const secret = await this.client.find<SecretObject>(Kinds.Secret, ref.name, namespace);
    const value = secret?.metadata.labels && (secret.metadata.labels as Record<string, string>)[CONNECTION_SECRET_LABEL] === 'true' ? secret.data?.[ref.key] : undefined;
    // One answer for a missing Secret, a missing key and a Secret without the label: no oracle.
    if (!value) {
      throw new NotFoundError(`secret ${ref.name} with key ${ref.key} and label ${CONNECTION_SECRET_LABEL}=true was not found`, {
        reason: ConnectionReason.SecretNotFound,
        hint: `a Connection may only use a Secret labelled ${CONNECTION_SECRET_LABEL}=true: kubectl label secret ${ref.name} ${CONNECTION_SECRET_LABEL}=true`,
      });
    }
    return Buffer.from(value, 'base64').toString('utf8');
  }

  /** A pool for the connection; a changed connection (new resourceVersion of its spec) gets a new pool. */
  async pool(conn: Connection & KubeObject): Promise<postgres.Sql> {
    const key = `${conn.metadata.namespace}/${conn.metadata.name}`;
    const version = JSON.stringify(conn.spec);
    const existing = this.pools.get(key);
    if (existing && existing.version === version) return existing.sql;
    if (existing) void existing.sql.end({ timeout: 5 });
    const sql = openDatabase(await this.resolveUrl(conn), { max: this.maxPoolSize });
    this.pools.set(key, { version, sql });
    return sql;
  }

  /** Closes the pool of a deleted connection (key `namespace/name`). */
  async forget(key: string): Promise<void> {
    const existing = this.pools.get(key);
    this.pools.delete(key);
    await existing?.sql.end({ timeout: 5 });
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.sql.end({ timeout: 5 })));
    this.log.debug({ pools: all.length }, 'database pools closed');
  }
}

/** One porsager client with our defaults: no notices in logs, bounded, short connect timeout. */
export function openDatabase(url: string, options: { max?: number; connectTimeoutSeconds?: number } = {}): postgres.Sql {
  parseDatabaseUrl(url);
  return postgres(url, { max: options.max ?? 5, connect_timeout: options.connectTimeoutSeconds ?? 10, idle_timeout: 60, onnotice: () => {}, prepare: true });
}

/**
 * Refuses a server whose major version the schema engine does not support (`server_version_num`,
 * e.g. 150004; the list is the engine's own, SUPPORTED_PG_MAJORS), naming the connection and the
 * versions. Pure, for the check at connect.
 */
export function unsupportedPostgres(versionNum: number, connection: string): ConflictError | undefined {
  const major = Math.floor(versionNum / 10000);
  if (SUPPORTED_PG_MAJORS.includes(major)) return undefined;
  return new ConflictError(`connection ${connection}: Postgres ${major} is not supported; Santokit supports Postgres ${SUPPORTED_PG_MAJORS.join(', ')}`, {
    reason: ConnectionReason.UnsupportedVersion,
    hint: 'upgrade the database server, or point the connection at a supported one',
  });
}

/** Connects, authenticates and runs `SELECT 1`; throws an error whose reason names the failure. */
export async function probeDatabase(url: string, timeoutSeconds = 5): Promise<void> {
  const sql = openDatabase(url, { max: 1, connectTimeoutSeconds: timeoutSeconds });
  try {
    await sql`SELECT 1`;
  } catch (err) {
    throw databaseError(err);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** Maps a driver or network error to a named reason, by error code (SQLSTATE or errno), never by message. */
export function databaseError(err: unknown): SantokitError {
  const code = (err as { code?: string }).code ?? '';
  const byCode: Record<string, [string, string]> = {
    ENOTFOUND: [ConnectionReason.DNSFailed, 'the database host name does not resolve'],
    EAI_AGAIN: [ConnectionReason.DNSFailed, 'the database host name could not be resolved'],
    ECONNREFUSED: [ConnectionReason.ConnectionRefused, 'the database refused the connection'],
    CONNECT_TIMEOUT: [ConnectionReason.Timeout, 'connecting to the database timed out'],
    ETIMEDOUT: [ConnectionReason.Timeout, 'connecting to the database timed out'],
    '28P01': [ConnectionReason.AuthenticationFailed, 'the database rejected the credentials'],
    '28000': [ConnectionReason.AuthenticationFailed, 'the database rejected the credentials'],
    '3D000': [ConnectionReason.DatabaseNotFound, 'the database does not exist'],
  };
  const hit = byCode[code];
  if (hit) return new UnavailableError(hit[1], { reason: hit[0], cause: err });
  return new UnavailableError(`the database connection failed (${code || 'unknown error'})`, { reason: ConnectionReason.ConnectionFailed, cause: err });
}
