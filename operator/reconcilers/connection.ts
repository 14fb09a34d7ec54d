import { markReady, markRetrying, setCondition } from '../../core/api/conditions.ts';
import { Annotations, Kinds, type Connection, type ConnectionStatus, type Environment, type Release } from '../../core/api/resources.ts';
import { asSantokitError, isSantokitError, UnavailableError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { Informer } from '../../core/kube/informer.ts';
import { redactSecrets } from '../../core/redact.ts';
import { readReleaseContent } from '../../core/release/content.ts';
import {
  DATA_PLANE_CREDENTIAL_LABEL,
  DATA_PLANE_CREDENTIAL_TYPE,
  GRANTS_ANNOTATION,
  ROLE_TARGET_ANNOTATION,
  dataPlaneRoleName,
  dataPlaneSecretName,
  dataPlaneUrl,
  ensureDataPlaneRole,
  grantsFingerprint,
  managedTablesOfReleases,
  tablesByConnection,
  newDataPlanePassword,
  removeDataPlaneRole,
} from '../data-plane-role.ts';
import { ConnectionReason, describeTarget, parseDatabaseUrl, probeDatabase, type Databases } from '../databases.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler, WatchMapping } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { FIELD_MANAGER, reconcileWithStatus } from '../runtime/skeleton.ts';
import { fetchRelease } from '../release-store.ts';

export const ReachableCondition = 'Reachable';
export const DataPlaneCredentialCondition = 'DataPlaneCredential';

export const DataPlaneReason = {
  CredentialReady: 'CredentialReady',
  /** the owner URL's role may not create roles (SQLSTATE 42501) */
  CreateRoleRefused: 'CreateRoleRefused',
  CredentialFailed: 'CredentialFailed',
  /** a Secret of the credential's name exists and is not the operator's */
  CredentialSecretConflict: 'CredentialSecretConflict',
  /** the Connection is being deleted and its role could not be dropped yet (retried until the cleanup deadline) */
  RoleCleanupFailed: 'RoleCleanupFailed',
  /** Warning Event: a role (or its privileges in a database) stays behind; the message says where and how to drop it */
  RoleLeftBehind: 'DataPlaneRoleLeftBehind',
} as const;

/**
 * Held by every Connection the operator has reconciled: its deletion first drops the data plane's
 * role, see `ConnectionReconciler.removeCredential`.
 */
export const CONNECTION_FINALIZER = 'santokit.io/data-plane-role';

/** How long a deleted Connection's finalizer retries dropping its role before it gives up (`--connection-cleanup-timeout`). */
export const DEFAULT_CLEANUP_TIMEOUT_MS = 300_000;

type Conn = Connection & KubeObject;

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

interface CredentialPlan {
  readonly secretName: string;
  readonly role: string;
  readonly tables: string[];
  readonly fingerprint: string;
  readonly existing: SecretObject | undefined;
  /** the existing Secret is the one the operator wrote for this Connection */
  readonly ours: boolean;
  /** …and it records grants for exactly these tables */
  readonly upToDate: boolean;
}

/**
 * Opens the connection's URL (sealed value or Secret), connects, authenticates and runs a query;
 * reports `Reachable` with the last tested time and a named reason, and re-probes periodically.
 * A new value of the `santokit.io/probe` annotation asks for a probe now; it is echoed in
 * `status.probe` once answered.
 *
 * It also keeps the data plane's database role of the connection (data-plane-role.ts): created
 * with the owner URL, granted DML on the tables of the environment's current and desired
 * releases, its URL in the Secret `santokit-dataplane-<connection>` (`DataPlaneCredential`
 * condition). A pointer move of the environment (watched) re-grants when the tables change, and
 * every probe re-grants and revokes what is not a managed table.
 *
 * The role goes with its Connection. Deletion (finalizer `santokit.io/data-plane-role`) drops it
 * (`removeDataPlaneRole`: its privileges in the connection's database, then the role); the
 * credential Secret, owned by the Connection, then goes with it (garbage collector). A database
 * that cannot be reached (or a URL that cannot be resolved any more) does not hold the deletion
 * forever (a Connection that never got as far as its credential has no role and is let go after
 * one attempt): the finalizer retries with a growing delay (1–30 s)
 * until `cleanupTimeoutMs` after the deletion was asked for, then lets the Connection go with a
 * Warning Event `DataPlaneRoleLeftBehind` (and a log line) naming the role, the database and the
 * statements that drop it; Postgres' refusal to drop a role that still holds privileges in another
 * database (2BP01) gives up at once the same way. When a Connection's URL moves to another
 * database of the same server, the role's privileges in the previous database are revoked with
 * the new URL (the role itself, one per server, stays in use); when it moves to another server
 * the new credentials are never sent to the old one, and a Warning Event names the role left there.
 */
export class ConnectionReconciler implements Reconciler {
  readonly name = 'connection';
  readonly kind = Kinds.Connection;
  /** release uid → its tables per connection (bounded; see tablesOf) */
  private readonly releaseTables = new Map<string, Record<string, string[]>>();

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly databases: Databases,
    private readonly reprobeMs: number,
    private readonly cleanupTimeoutMs: number = DEFAULT_CLEANUP_TIMEOUT_MS,
  ) {}

  /** An Environment's change (its releases) re-checks the grants of its Connections. */
  static watchEnvironments(connections: Informer<Conn>): WatchMapping {
    return {
      kind: Kinds.Environment,
      map: (env) =>
        connections
          .list()
          .filter((c) => c.metadata.namespace === env.metadata.namespace && c.spec.environment === env.metadata.name)
          .map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
    };
  }

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Connection, ConnectionStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      gone: () => this.databases.forget(request.key),
      finalizer: CONNECTION_FINALIZER,
      finalize: ({ obj, status, generation }) => this.removeCredential(obj as Conn, status, generation, context),
      work: async ({ obj, status, generation }) => {
        const conn = obj as Conn;
        const probeRequest = obj.metadata.annotations?.[Annotations.probe];
        const last = status.lastTestedTime ? Date.parse(status.lastTestedTime) : 0;
        const fresh = generation === status.observedGeneration && probeRequest === status.probe && Date.now() - last < this.reprobeMs * 0.9;
        const untilNextProbe = { requeueAfterMs: Math.max(1_000, last + this.reprobeMs - Date.now()) };
        const reachable = status.conditions?.some((c) => c.type === ReachableCondition && c.status === 'True') ?? false;
        const credentialReady = status.conditions?.some((c) => c.type === DataPlaneCredentialCondition && c.status === 'True') ?? false;

        let url: string | undefined;
        let plan: CredentialPlan;
        if (fresh) {
          // Between probes only the grants may need work (the environment's releases moved, or
          // the last attempt failed); nothing here writes status unless something changed.
          if (!reachable) return untilNextProbe;
          plan = await this.credentialPlan(conn);
          if (credentialReady && plan.upToDate) return untilNextProbe;
        } else {
          const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
          status.lastTestedTime = now;
          if (probeRequest !== undefined) status.probe = probeRequest;
          try {
            url = await this.databases.resolveUrl(obj);
            status.target = describeTarget(url);
            await probeDatabase(url);
          } catch (thrown) {
            const err = asSantokitError(thrown);
            const message = redactSecrets(err.message);
            context.log.info({ reason: err.reason }, 'connection probe failed');
            status.conditions = setCondition(status.conditions, { type: ReachableCondition, status: 'False', reason: err.reason, message }, generation);
            status.conditions = markRetrying(status.conditions, err.reason, message, generation);
            return { requeueAfterMs: this.reprobeMs };
          }
          status.conditions = setCondition(status.conditions, { type: ReachableCondition, status: 'True', reason: ConnectionReason.Reachable, message: `connected and authenticated to ${status.target}` }, generation);
          plan = await this.credentialPlan(conn);
        }

        // Grants are re-made with every probe (so a table the owner created outside a release, which
        // the default privileges granted, loses its grant within one probe interval) and whenever
        // the managed tables change (an Environment's release pointers, watched).
        const failed = await (async () => {
          url ??= await this.databases.resolveUrl(obj);
          await this.ensureCredential(conn, url, plan, context);
        })().then(
          () => undefined,
          (thrown: unknown) => asSantokitError(thrown),
        );
        if (failed) {
          const message = redactSecrets(failed.message);
          context.log.info({ reason: failed.reason }, 'data-plane credential failed');
          status.conditions = setCondition(status.conditions, { type: DataPlaneCredentialCondition, status: 'False', reason: failed.reason, message }, generation);
          status.conditions = markRetrying(status.conditions, failed.reason, message, generation);
          return { requeueAfterMs: Math.min(this.reprobeMs, 30_000) };
        }
        status.conditions = setCondition(status.conditions, { type: DataPlaneCredentialCondition, status: 'True', reason: DataPlaneReason.CredentialReady, message: `the data plane connects as ${plan.role} (DML on the managed tables only)` }, generation);
        status.conditions = markReady(status.conditions, ConnectionReason.Reachable, `connected and authenticated to ${status.target}`, generation);
        return fresh ? untilNextProbe : { requeueAfterMs: this.reprobeMs };
      },
    });
  }

  /** A release's tables per connection; releases are immutable, so a few are remembered by uid (a chunked one is read from its ConfigMaps). */
  private async tablesOf(release: Release & KubeObject): Promise<Record<string, string[]>> {
    const key = release.metadata.uid ?? `${release.metadata.namespace}/${release.metadata.name}`;
    const known = this.releaseTables.get(key);
    if (known) return known;
    const tables = tablesByConnection((await readReleaseContent(this.client, release)).schema);
    if (this.releaseTables.size >= 32) this.releaseTables.delete(this.releaseTables.keys().next().value!);
    this.releaseTables.set(key, tables);
    return tables;
  }

  /** The managed tables of the Connection now: those of its environment's current and desired releases. */
  private async managedTables(conn: Conn): Promise<string[]> {
    const namespace = conn.metadata.namespace!;
    const env = await this.client.find<Environment & KubeObject>(Kinds.Environment, conn.spec.environment, namespace);
    const ids = [...new Set([env?.status?.currentRelease, env?.spec.release].filter((r): r is string => Boolean(r)))];
    const releases = await Promise.all(ids.map((id) => fetchRelease(this.client, namespace, id)));
    return managedTablesOfReleases(await Promise.all(releases.map((r) => (r ? this.tablesOf(r) : undefined))), conn.spec.name);
  }

  /** What the grants should be now (the tables of the environment's releases) and whether the Secret says they were made. */
  private async credentialPlan(conn: Conn): Promise<CredentialPlan> {
    const namespace = conn.metadata.namespace!;
    const secretName = dataPlaneSecretName(conn.metadata.name);
    const tables = await this.managedTables(conn);
    const role = dataPlaneRoleName(conn);
    const fingerprint = grantsFingerprint(role, tables);
    const existing = await this.client.find<SecretObject>(Kinds.Secret, secretName, namespace);
    const ours = Boolean(existing && (existing.metadata.labels as Record<string, string> | undefined)?.[DATA_PLANE_CREDENTIAL_LABEL] === 'true' && ((existing.metadata.ownerReferences ?? []) as Array<{ uid?: string }>).some((o) => o.uid === conn.metadata.uid));
    const upToDate = ours && (existing!.metadata.annotations as Record<string, string> | undefined)?.[GRANTS_ANNOTATION] === fingerprint;
    return { secretName, role, tables, fingerprint, existing, ours, upToDate };
  }

  /**
   * Makes the role's grants those of the managed tables and writes its URL into the Secret. The
   * tables are read again once the schema lock is held (see ensureDataPlaneRole): a migration the
   * grants waited for may have created tables of a release asked for since `plan` was made.
   */
  private async ensureCredential(conn: Conn, ownerUrl: string, plan: CredentialPlan, context: ReconcileContext): Promise<void> {
    const namespace = conn.metadata.namespace!;
    const { secretName: name, role, existing, ours } = plan;
    if (existing && !ours) {
      throw new UnavailableError(`secret ${name} exists and was not written by the operator for this connection`, {
        reason: DataPlaneReason.CredentialSecretConflict,
        retryable: false,
        hint: `delete or rename secret ${name}: the operator keeps the data plane's database credential there`,
      });
    }
    const password = ours && existing!.data?.password ? Buffer.from(existing!.data.password, 'base64').toString('utf8') : newDataPlanePassword();
    const target = describeTarget(ownerUrl);
    const previousTarget = ours ? (existing!.metadata.annotations as Record<string, string> | undefined)?.[ROLE_TARGET_ANNOTATION] : undefined;
    let tables: readonly string[];
    try {
      tables = await ensureDataPlaneRole(ownerUrl, role, password, () => this.managedTables(conn));
    } catch (err) {
      // Reading the environment or its releases failed (under the lock): that error, as it is.
      if (isSantokitError(err)) throw err;
      const code = (err as { code?: string }).code;
      if (code === '42501') {
        throw new UnavailableError('the connection\'s database user may not create the data plane\'s role or grant on the managed tables', {
          reason: DataPlaneReason.CreateRoleRefused,
          cause: err,
          hint: 'give the connection\'s user CREATEROLE (ALTER ROLE … CREATEROLE) and ownership of the managed tables',
        });
      }
      throw new UnavailableError(`the data plane's database role could not be set up (${code ?? 'unknown error'})`, { reason: DataPlaneReason.CredentialFailed, cause: err });
    }
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    await this.client.apply<SecretObject>(
      Kinds.Secret,
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: DATA_PLANE_CREDENTIAL_TYPE,
        metadata: {
          name,
          namespace,
          labels: { [DATA_PLANE_CREDENTIAL_LABEL]: 'true', 'app.kubernetes.io/managed-by': 'santokit', 'santokit.io/connection': conn.metadata.name },
          annotations: { [GRANTS_ANNOTATION]: grantsFingerprint(role, tables), [ROLE_TARGET_ANNOTATION]: target },
          ownerReferences: [{ apiVersion: conn.apiVersion ?? 'santokit.io/v1alpha1', kind: 'Connection', name: conn.metadata.name, uid: conn.metadata.uid! }],
        },
        data: { url: b64(dataPlaneUrl(ownerUrl, role, password)), password: b64(password), role: b64(role) },
      },
      { fieldManager: FIELD_MANAGER, force: true },
    );
    context.log.info({ role, tables: tables.length }, 'data-plane credential ensured');
    if (previousTarget !== undefined && previousTarget !== target) await this.leaveDatabase(conn, ownerUrl, role, previousTarget, context);
  }

  /**
   * The Connection's URL moved from database `previous` (`host:port/db`) to `ownerUrl`'s: on the
   * same server, revoke the role's privileges in the previous database with the new URL (the role
   * stays: it serves the new database); on another server, only say what is left there (the new
   * credentials are never sent to a server the Connection no longer names). Never fails the reconcile.
   */
  private async leaveDatabase(conn: Conn, ownerUrl: string, role: string, previous: string, context: ReconcileContext): Promise<void> {
    const at = /^(.*:\d+)(\/.*)$/.exec(previous);
    const next = parseDatabaseUrl(ownerUrl);
    const sameServer = at !== null && at[1] === `${next.hostname}:${next.port || '5432'}`;
    const drop = `DROP OWNED BY ${role}; DROP ROLE ${role}`;
    if (!sameServer) {
      context.log.warn({ role, previous }, 'the data-plane role stays on the previous server');
      await this.events.record(Kinds.Connection, conn, 'Warning', DataPlaneReason.RoleLeftBehind, `the connection moved to another server; the data plane's role ${role} is left on ${previous}: drop it there (${drop})`);
      return;
    }
    const old = new URL(next.toString());
    old.pathname = at![2]!;
    try {
      await removeDataPlaneRole(old.toString(), role, { keepRole: true });
      context.log.info({ role, previous }, 'data-plane role privileges revoked in the previous database');
    } catch (thrown) {
      const why = redactSecrets(asSantokitError(thrown).message);
      context.log.warn({ role, previous, err: why }, 'the data-plane role keeps its privileges in the previous database');
      await this.events.record(Kinds.Connection, conn, 'Warning', DataPlaneReason.RoleLeftBehind, `the data plane's role ${role} keeps its privileges in ${previous} (${why}): revoke them there (DROP OWNED BY ${role})`);
    }
  }

  /**
   * The finalizer: drops the Connection's data-plane role. Undefined when done (or given up, with
   * a Warning Event); a requeue while retrying. The credential Secret is owned by the Connection:
   * the garbage collector deletes it once the Connection is gone (the operator has no right to
   * delete Secrets).
   */
  private async removeCredential(conn: Conn, status: ConnectionStatus, generation: number | undefined, context: ReconcileContext): Promise<ReconcileResult | undefined> {
    const role = dataPlaneRoleName(conn);
    let target = status.target ?? 'the connection\'s database';
    let resolved = false;
    try {
      const url = await this.databases.resolveUrl(conn);
      resolved = true;
      target = describeTarget(url);
      const outcome = await removeDataPlaneRole(url, role);
      context.log.info({ role, outcome }, 'data-plane role dropped');
      return undefined;
    } catch (thrown) {
      const err = asSantokitError(thrown);
      const code = (thrown as { code?: unknown }).code;
      const why = redactSecrets(err.message) + (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : '');
      const elapsed = Date.now() - Date.parse(conn.metadata.deletionTimestamp ?? new Date().toISOString());
      // A Connection that never got as far as its credential (never reachable, say) has no role:
      // one attempt is enough, and there is nothing to warn about.
      if (!status.conditions?.some((c) => c.type === DataPlaneCredentialCondition)) {
        context.log.info({ role, err: why }, 'no data-plane role was ever made for this connection; nothing to drop');
        return undefined;
      }
      // 2BP01: the role still holds privileges in another database; retrying here cannot change that.
      // Nor can it bring back a database URL that is gone: a secretRef's Secret deleted (or no
      // longer readable) with the project's namespace, which goes down around its Connections.
      const urlGone = !resolved && !err.retryable;
      if (code === '2BP01' || urlGone || elapsed >= this.cleanupTimeoutMs) {
        context.log.warn({ role, target, err: why }, 'data-plane role left behind');
        await this.events.record(Kinds.Connection, conn, 'Warning', DataPlaneReason.RoleLeftBehind, `the data plane's role ${role} could not be dropped from ${target} (${why}): drop it there (DROP OWNED BY ${role}; DROP ROLE ${role})`);
        return undefined;
      }
      context.log.info({ role, err: why }, 'data-plane role not dropped yet');
      const message = `the data plane's role ${role} could not be dropped yet: ${why}; retrying for ${Math.ceil((this.cleanupTimeoutMs - elapsed) / 1000)} s more, then it is left behind`;
      status.conditions = markRetrying(status.conditions, DataPlaneReason.RoleCleanupFailed, message, generation);
      return { requeueAfterMs: Math.min(Math.max(1_000, elapsed / 4, 0), 30_000, Math.max(1_000, this.cleanupTimeoutMs - elapsed)) };
    }
  }
}
