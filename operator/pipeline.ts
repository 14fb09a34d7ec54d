import type postgres from 'postgres';
import {
  API_VERSION,
  Kinds,
  type Connection,
  type Environment,
  type EnvironmentStatus,
  type PipelineStep,
  type PlannedConnection,
  type Release,
  type ReleaseRequest,
} from '../core/api/resources.ts';
import { ConflictError, NotFoundError, SantokitError, asSantokitError } from '../core/errors.ts';
import type { KubeClient, KubeObject } from '../core/kube/client.ts';
import type { Logger } from '../core/log.ts';
import { applyPlan, compareSchemas, introspectSchema, planLiveSchemaChanges, renderPlan, type SchemaPlan } from '../core/schema/index.ts';
import { canonicalJson, hashSchema, sha256Hex, type SchemaIR } from '../core/schema/ir.ts';
import { findCondition, setCondition } from '../core/api/conditions.ts';
import { type Databases, databaseError } from './databases.ts';
import type { EventRecorder } from './runtime/events.ts';
import { FIELD_MANAGER } from './runtime/skeleton.ts';

/** Reasons a pipeline run fails with (condition reasons, CLI messages). */
export const PipelineReason = {
  ReleaseNotFound: 'ReleaseNotFound',
  ReleaseNotInHistory: 'ReleaseNotInHistory',
  ConnectionMissing: 'ConnectionMissing',
  ConnectionFailed: 'ConnectionFailed',
  DestructiveChange: 'DestructiveChange',
  SchemaDrift: 'SchemaDrift',
  PromotionBlocked: 'PromotionBlocked',
  ApplyFailed: 'ApplyFailed',
  Released: 'Released',
} as const;

export const PERMISSIONS_CONFIGMAP_PREFIX = 'santokit-permissions-';

/** The name of the ConfigMap holding a release's compiled permission snapshot. */
export function permissionsConfigMapName(releaseId: string): string {
  return `${PERMISSIONS_CONFIGMAP_PREFIX}${releaseId}`;
}

/** A pipeline failure: a SantokitError with the reason of the step that failed, and what it found. */
export class PipelineError extends ConflictError {
  constructor(
    message: string,
    reason: string,
    readonly details: { drift?: string[]; plans?: PlannedConnection[] } = {},
  ) {
    super(message, { reason });
  }
}

type Env = Environment & KubeObject;
type Rel = Release & KubeObject;

export interface PipelineRun {
  env: Env;
  status: EnvironmentStatus;
  request: ReleaseRequest;
  log: Logger;
}

/**
 * The release pipeline of DESIGN §3, run by the Environment reconciler: plan → destructive gate →
 * transactional apply → drift check → permission snapshot → pointer move. Each step is reported
 * in `status.steps` and as an Event; a failure leaves the previous release serving.
 */
export class ReleasePipeline {
  constructor(
    private readonly client: KubeClient,
    private readonly databases: Databases,
    private readonly events: EventRecorder,
  ) {}

  /** Runs one request; fills status (steps, plans, drift, pointer) and throws a named error on failure. */
  async run(run: PipelineRun): Promise<{ plans?: PlannedConnection[]; drift?: string[] }> {
    const { env, status, request } = run;
    const release = await this.loadRelease(env, request.release);
    const schema = release.spec.schema as Record<string, SchemaIR>;
    const current = status.currentRelease && status.currentRelease !== request.release ? await this.findRelease(env, status.currentRelease) : undefined;
    const currentSchema = (current?.spec.schema ?? {}) as Record<string, SchemaIR>;
    status.steps = [];

    if (request.action === 'rollback') {
      const known = status.currentRelease === request.release || (status.history ?? []).some((h) => h.release === request.release);
      if (!known) throw new NotFoundError(`release ${request.release} has never served environment ${env.metadata.name}: rollback only goes to a release from its history`, { reason: PipelineReason.ReleaseNotInHistory });
      await this.snapshotPermissions(run, release);
      this.movePointer(run, release, 'rollback');
      return {};
    }

    const pools = await this.connect(run, release);

    if (request.action === 'drift') {
      const found = await this.recordDrift(run, pools, schema, release.metadata.name);
      return { drift: found };
    }

    if (request.action === 'plan') {
      const planned = await this.planAll(run, pools, schema, currentSchema);
      return { plans: planned.map((p) => summarize(p.plan)) };
    }

    if (request.action === 'promote') {
      // No drift gate against the current release here: a database already brought to the promoted
      // release (`--only schema`) differs from the current one by design. Exactly satisfying the
      // promoted release is the gate, and its differences are what the message lists.
      await this.requireSatisfied(
        run,
        pools,
        schema,
        PipelineReason.PromotionBlocked,
        `environment ${env.metadata.name}'s databases do not satisfy release ${release.metadata.name} (promotion runs no DDL); bring them there first with \`stk apply --env ${env.metadata.name} --only schema --ref ${release.spec.ref}\``,
      );
      await this.snapshotPermissions(run, release);
      this.movePointer(run, release, 'promote');
      return {};
    }

    // apply
    const only = new Set(request.only ?? ['schema', 'permissions', 'release']);
    if (current) await this.driftGate(run, pools, currentSchema, current.metadata.name, schema);
    let plans: PlannedConnection[] | undefined;
    if (only.has('schema')) {
      const planned = await this.planAll(run, pools, schema, currentSchema);
      plans = planned.map((p) => summarize(p.plan));
      const blocked = planned.flatMap((p) => p.plan.steps.filter((s) => s.destructive).map((s) => `${p.connection}: ${s.description} (${s.hazards.map((h) => h.kind).join(', ')})`));
      if (blocked.length > 0 && !request.force) {
        this.step(run, { name: 'plan', state: 'Failed', reason: PipelineReason.DestructiveChange, message: `${blocked.length} destructive step(s)` });
        throw new PipelineError(`the plan has destructive steps; nothing was applied. Re-run with --force to apply them:\n${blocked.map((b) => `  - ${b}`).join('\n')}`, PipelineReason.DestructiveChange, { plans });
      }
      for (const p of planned) await this.applyOne(run, p.connection, p.sql, p.plan, release, Boolean(request.force));
      await this.requireSatisfied(run, pools, schema, PipelineReason.SchemaDrift, `after applying release ${release.metadata.name} the databases still differ from it`);
    } else if (only.has('release')) {
      await this.requireSatisfied(run, pools, schema, PipelineReason.SchemaDrift, `--only ${[...only].join(',')} skips DDL, but the databases do not satisfy release ${release.metadata.name}`);
    }
    if (only.has('permissions')) await this.snapshotPermissions(run, release);
    if (only.has('release')) this.movePointer(run, release, 'apply');
    return plans ? { plans } : {};
  }

  /** Records a step in status and as an Event. */
  private step(run: PipelineRun, step: PipelineStep): void {
    const steps = run.status.steps ?? (run.status.steps = []);
    const i = steps.findIndex((s) => s.name === step.name && s.connection === step.connection);
    if (i >= 0) steps[i] = step;
    else steps.push(step);
    const what = `${step.name}${step.connection ? ` (${step.connection})` : ''}`;
    void this.events.record(Kinds.Environment, run.env, step.state === 'Failed' ? 'Warning' : 'Normal', step.reason ?? `Step${step.state}`, `${what}: ${step.state.toLowerCase()}${step.message ? `: ${step.message}` : ''}`);
  }

  private async loadRelease(env: Env, id: string): Promise<Rel> {
    const release = await this.findRelease(env, id);
    if (!release) throw new NotFoundError(`release ${id} does not exist in project ${env.spec.project}`, { reason: PipelineReason.ReleaseNotFound });
    return release;
  }

  private findRelease(env: Env, id: string): Promise<Rel | undefined> {
    return this.client.find<Rel>(Kinds.Release, id, env.metadata.namespace);
  }

  /** One pool per connection the release names; a missing Connection is terminal, an unreachable one retried. */
  private async connect(run: PipelineRun, release: Rel): Promise<Map<string, postgres.Sql>> {
    const pools = new Map<string, postgres.Sql>();
    const names = Object.keys(release.spec.schema).sort();
    const { items } = await this.client.list<Connection & KubeObject>(Kinds.Connection, { namespace: run.env.metadata.namespace });
    const missing = names.filter((n) => !items.some((c) => c.spec.environment === run.env.metadata.name && c.spec.name === n));
    if (missing.length > 0) {
      throw new ConflictError(`environment ${run.env.metadata.name} has no connection named ${missing.join(', ')}`, {
        reason: PipelineReason.ConnectionMissing,
        hint: `create it with \`stk connections set --env ${run.env.metadata.name} --name ${missing[0]} --db-url …\``,
      });
    }
    for (const name of names) {
      const conn = items.find((c) => c.spec.environment === run.env.metadata.name && c.spec.name === name)!;
      try {
        const sql = await this.databases.pool(conn);
        await sql`SELECT 1`;
        pools.set(name, sql);
      } catch (err) {
        const e = err instanceof SantokitError ? err : databaseError(err);
        throw new SantokitErrorWithReason(`connection ${name}: ${e.message}`, PipelineReason.ConnectionFailed, e);
      }
    }
    return pools;
  }

  private async planAll(run: PipelineRun, pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR>, previous: Record<string, SchemaIR>) {
    const out: Array<{ connection: string; sql: postgres.Sql; plan: SchemaPlan }> = [];
    for (const [connection, sql] of pools) {
      const declared = schema[connection]!;
      // the same planning as `stk` dry runs and tests: probes rows, duplicates and logical types only where a step depends on them
      const plan = await planLiveSchemaChanges(sql, { declared, previous: previous[connection] ?? null, connection });
      this.step(run, { name: 'plan', connection, state: 'Succeeded', message: `${plan.steps.length} step(s)${plan.steps.some((s) => s.destructive) ? ', destructive' : ''}` });
      out.push({ connection, sql, plan });
    }
    return out;
  }

  private async applyOne(run: PipelineRun, connection: string, sql: postgres.Sql, plan: SchemaPlan, release: Rel, force: boolean): Promise<void> {
    if (plan.steps.length === 0) {
      this.step(run, { name: 'apply', connection, state: 'Skipped', message: 'nothing to change' });
      return;
    }
    try {
      const result = await applyPlan(sql, plan, { releaseId: release.metadata.name, ref: release.spec.ref, force });
      this.step(run, { name: 'apply', connection, state: 'Succeeded', message: `${result.statements.length} statement(s) in one transaction` });
    } catch (err) {
      const e = asSantokitError(err);
      this.step(run, { name: 'apply', connection, state: 'Failed', reason: e.reason, message: e.message });
      throw e;
    }
  }

  /** Compares each connection's live schema with the declared one: one line per difference, and a fingerprint of what is live. */
  private async driftOf(pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR>): Promise<{ lines: string[]; fingerprint: string }> {
    const lines: string[] = [];
    const hashes: Record<string, string> = {};
    for (const [connection, declared] of Object.entries(schema).sort(([a], [b]) => a.localeCompare(b))) {
      const sql = pools.get(connection);
      if (!sql) continue;
      const live = await introspectSchema(sql, { managedTables: Object.keys(declared.tables) });
      lines.push(...compareSchemas(declared, live.ir).map((d) => `${connection}: ${d.message}`));
      hashes[connection] = hashSchema(live.ir);
    }
    return { lines, fingerprint: sha256Hex(canonicalJson(hashes)) };
  }

  /**
   * Checks the env's databases against its current release and records the result: `status.drift`,
   * the live-schema fingerprint, and a `Drifted` condition with an Event when it appears or clears.
   */
  private async recordDrift(run: PipelineRun, pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR>, releaseId: string): Promise<string[]> {
    const { lines, fingerprint } = await this.driftOf(pools, schema);
    const { status, env } = run;
    const before = findCondition(status, 'Drifted')?.status;
    status.drift = lines;
    status.lastDriftCheck = nowIso();
    status.liveSchemaHash = fingerprint;
    const drifted = lines.length > 0;
    status.conditions = setCondition(
      status.conditions,
      drifted
        ? { type: 'Drifted', status: 'True', reason: PipelineReason.SchemaDrift, message: `${lines.length} difference(s) from release ${releaseId}:\n${lines.join('\n')}` }
        : { type: 'Drifted', status: 'False', reason: 'NoDrift', message: `databases match release ${releaseId}` },
      env.metadata.generation,
    );
    const after = drifted ? 'True' : 'False';
    if (before !== after && (drifted || before === 'True')) {
      await this.events.record(Kinds.Environment, env, drifted ? 'Warning' : 'Normal', drifted ? 'DriftDetected' : 'DriftCleared', drifted ? `${lines.length} difference(s) from release ${releaseId}` : `databases match release ${releaseId} again`);
    }
    return lines;
  }

  /** Periodic drift check of the release an env serves (no request involved). */
  async checkCurrentDrift(run: Omit<PipelineRun, 'request'>): Promise<void> {
    const id = run.status.currentRelease;
    if (!id) return;
    const release = await this.loadRelease(run.env, id);
    const full: PipelineRun = { ...run, request: { id: 'periodic-drift', action: 'drift', release: id } };
    const pools = await this.connect(full, release);
    await this.recordDrift(full, pools, release.spec.schema as Record<string, SchemaIR>, id);
  }

  /** The env's databases must still match its current release before anything changes. */
  private async driftGate(run: PipelineRun, pools: Map<string, postgres.Sql>, currentSchema: Record<string, SchemaIR>, currentId: string, targetSchema: Record<string, SchemaIR>): Promise<void> {
    const drift = await this.recordDrift(run, pools, currentSchema, currentId);
    // A database that already matches the target release (its schema applied with --only schema)
    // differs from the current release on purpose: that is not drift to block on.
    if (drift.length > 0 && (await this.driftOf(pools, targetSchema)).lines.length > 0) {
      this.step(run, { name: 'drift', state: 'Failed', reason: PipelineReason.SchemaDrift, message: `${drift.length} difference(s) from release ${currentId}` });
      throw new PipelineError(`the databases of environment ${run.env.metadata.name} drifted from its current release ${currentId}; nothing was applied:\n${drift.map((d) => `  - ${d}`).join('\n')}\nrevert the manual change, or apply a release that declares it`, PipelineReason.SchemaDrift, { drift });
    }
  }

  /** Every connection's database must match the release's schema exactly. */
  private async requireSatisfied(run: PipelineRun, pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR>, reason: string, headline: string): Promise<void> {
    const { lines: drift } = await this.driftOf(pools, schema);
    if (drift.length > 0) {
      this.step(run, { name: 'drift', state: 'Failed', reason, message: `${drift.length} difference(s)` });
      throw new PipelineError(`${headline}:\n${drift.map((d) => `  - ${d}`).join('\n')}`, reason, { drift });
    }
    this.step(run, { name: 'drift', state: 'Succeeded', message: 'databases match the release' });
  }

  /** Stores the compiled permission snapshot the data plane enforces, owned by the Release. */
  private async snapshotPermissions(run: PipelineRun, release: Rel): Promise<void> {
    await this.client.apply(
      Kinds.ConfigMap,
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: permissionsConfigMapName(release.metadata.name),
          namespace: run.env.metadata.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'santokit', 'santokit.io/release': release.metadata.name },
          ownerReferences: [{ apiVersion: API_VERSION, kind: 'Release', name: release.metadata.name, uid: release.metadata.uid! }],
        },
        immutable: true,
        data: { 'permissions.json': JSON.stringify(release.spec.permissions) },
      },
      { fieldManager: FIELD_MANAGER, force: true },
    );
    this.step(run, { name: 'permissions', state: 'Succeeded', message: `snapshot ${permissionsConfigMapName(release.metadata.name)}` });
  }

  private movePointer(run: PipelineRun, release: Rel, action: 'apply' | 'promote' | 'rollback'): void {
    const limit = run.env.spec.historyLimit ?? 20;
    if (run.status.currentRelease !== release.metadata.name) {
      const entry = { release: release.metadata.name, ref: release.spec.ref, at: nowIso(), action, by: run.request.by ?? 'spec' };
      run.status.history = [entry, ...(run.status.history ?? [])].slice(0, limit);
    }
    run.status.currentRelease = release.metadata.name;
    this.step(run, { name: 'release', state: 'Succeeded', reason: PipelineReason.Released, message: `${action}: now serving ${release.metadata.name}` });
  }
}

/** An error that keeps the failure's retry semantics but names the pipeline step's reason. */
class SantokitErrorWithReason extends SantokitError {
  readonly status: number;
  readonly exitCode;
  readonly retryable: boolean;
  constructor(message: string, reason: string, inner: SantokitError) {
    super(message, reason, { reason, cause: inner });
    this.status = inner.status;
    this.exitCode = inner.exitCode;
    this.retryable = inner.retryable;
  }
}

function summarize(plan: SchemaPlan): PlannedConnection {
  return {
    connection: plan.connection,
    text: renderPlan(plan),
    steps: plan.steps.map((s) => ({ description: s.description, sql: s.sql, destructive: s.destructive, hazards: s.hazards.map((h) => h.kind) })),
  };
}

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
