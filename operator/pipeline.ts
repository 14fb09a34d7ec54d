import { gzipSync } from 'node:zlib';
import type postgres from 'postgres';
import {
  API_VERSION,
  Kinds,
  type ApplyMode,
  type Connection,
  type ConnectionReleaseState,
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
import {
  applyPlan,
  applyPlanOnline,
  blockedSteps,
  compareSchemas,
  dropInvalidIndexes,
  failedStepOf,
  finishPrepared,
  introspectSchema,
  listPrepared,
  lockCapacity,
  lockRefusal,
  managedTablesOf,
  planLiveSchemaChanges,
  planSchemaChanges,
  preparedTransactionId,
  readReleaseAt,
  renderMode,
  renderPlan,
  type ReleaseAt,
  type SchemaPlan,
} from '../core/schema/index.ts';
import { canonicalJson, hashSchema, schemaOf, sha256Hex, type SchemaIR } from '../core/schema/ir.ts';
import { readReleaseContent, type ReleaseBody } from '../core/release/content.ts';
import { findCondition, setCondition } from '../core/api/conditions.ts';
import { redactSecrets } from '../core/redact.ts';
import { type Databases, databaseError, unsupportedPostgres } from './databases.ts';
import type { EventRecorder } from './runtime/events.ts';
import { FIELD_MANAGER } from './runtime/skeleton.ts';
import { fetchRelease } from './release-store.ts';

/** Reasons a pipeline run fails with (condition reasons, CLI messages). */
export const PipelineReason = {
  ReleaseNotFound: 'ReleaseNotFound',
  ReleaseNotInHistory: 'ReleaseNotInHistory',
  ConnectionMissing: 'ConnectionMissing',
  ConnectionFailed: 'ConnectionFailed',
  DestructiveChange: 'DestructiveChange',
  /** a step Postgres would refuse with or without force (the data does not allow it, an unmanaged object depends on it) */
  PlanRefused: 'PlanRefused',
  SchemaDrift: 'SchemaDrift',
  PromotionBlocked: 'PromotionBlocked',
  ApplyFailed: 'ApplyFailed',
  TwoPhaseUnavailable: 'TwoPhaseUnavailable',
  Released: 'Released',
} as const;

/**
 * Test-only pause points (operator flag --test-pause-at / SANTOKIT_TEST_PAUSE_AT): the pipeline
 * stops there for good, so a test can kill the operator at an exact moment. Empty in production.
 * `two-phase-prepared`: every connection prepared, none committed yet.
 */
export const TEST_PAUSE_POINTS = ['two-phase-prepared'] as const;
export type TestPausePoint = (typeof TEST_PAUSE_POINTS)[number];

export const PERMISSIONS_CONFIGMAP_PREFIX = 'santokit-permissions-';
/** A permission snapshot larger than this is stored gzip-compressed (`binaryData` `permissions.json.gz`). */
const PERMISSIONS_INLINE_BYTES = 512 * 1024;

/** The name of the ConfigMap holding a release's compiled permission snapshot. */
export function permissionsConfigMapName(releaseId: string): string {
  return `${PERMISSIONS_CONFIGMAP_PREFIX}${releaseId}`;
}

/**
 * A pipeline failure: a SantokitError with the reason of the step that failed, and what it found.
 * Message and drift lines are bounded: they go into the Environment's status (a condition message
 * may hold 32 KiB), and a large schema can differ in thousands of places.
 */
export class PipelineError extends ConflictError {
  readonly details: { drift?: string[]; plans?: PlannedConnection[]; connection?: string };
  constructor(message: string, reason: string, details: PipelineError['details'] = {}, hint?: string) {
    super(boundedLines(message, STATUS_MESSAGE_BYTES), { reason, ...(hint ? { hint } : {}) });
    this.details = details.drift && details.drift.length > STATUS_DRIFT_LINES ? { ...details, drift: [...details.drift.slice(0, STATUS_DRIFT_LINES), `… ${details.drift.length - STATUS_DRIFT_LINES} more`] } : details;
  }
}

/** how much of a failure's message goes into status */
const STATUS_MESSAGE_BYTES = 16 * 1024;

/** The text cut at a line boundary within `max` characters, saying how many lines were left out. */
function boundedLines(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf('\n', max);
  const keep = cut > 0 ? text.slice(0, cut) : text.slice(0, max);
  return `${keep}\n… ${text.slice(keep.length).split('\n').filter(Boolean).length} more line(s)`;
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
    private readonly options: { testPauseAt?: TestPausePoint | undefined } = {},
  ) {}

  /** per run: release uid → its content, so a run reads each release once (dropped with the run) */
  private readonly contents = new WeakMap<PipelineRun, Map<string, Promise<ReleaseBody>>>();

  /** Runs one request; fills status (steps, plans, drift, pointer) and throws a named error on failure. */
  async run(run: PipelineRun): Promise<{ plans?: PlannedConnection[]; drift?: string[] }> {
    const { env, status, request } = run;
    const release = await this.loadRelease(env, request.release);
    // Read (a chunked release: fetched and verified) before anything else happens.
    const { schema } = await this.contentOf(run, release);
    const current = status.currentRelease && status.currentRelease !== request.release ? await this.findRelease(env, status.currentRelease) : undefined;
    status.steps = [];

    if (request.action === 'rollback') {
      const known = status.currentRelease === request.release || (status.history ?? []).some((h) => h.release === request.release);
      if (!known) throw new NotFoundError(`release ${request.release} has never served environment ${env.metadata.name}: rollback only goes to a release from its history`, { reason: PipelineReason.ReleaseNotInHistory });
      await this.snapshotPermissions(run, release);
      this.movePointer(run, release, 'rollback');
      return {};
    }

    const pools = await this.connect(run, schema);
    // In-doubt two-phase transactions of an earlier run are settled before anything reads the schema.
    await this.recoverPrepared(run, pools, release.metadata.name);
    const at = await this.releasesAt(pools);
    // The release the env serves: judged against when a connection records none.
    const serving = status.currentRelease === release.metadata.name ? release : current;
    const expected = await this.expectedSchemas(run, at, release, serving);

    if (request.action === 'drift') {
      const found = await this.recordDrift(run, pools, expected.schemas, release.metadata.name);
      return { drift: found };
    }

    const mode: ApplyMode = request.mode ?? env.spec.applyMode ?? 'transactional';
    if (request.action === 'plan') {
      const planned = await this.planAll(run, pools, schema, expected.schemas);
      return { plans: planned.map((p) => summarize(p.plan, mode)) };
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
    const states = new Map<string, ConnectionReleaseState>();
    for (const name of pools.keys()) {
      const rec = at.get(name);
      states.set(name, { name, ...(rec ? { release: rec.releaseId, mode: rec.mode } : {}), state: rec?.releaseId === release.metadata.name ? 'AtTarget' : 'Behind' });
    }
    const publish = () => (status.connections = [...states.values()]);
    publish();
    try {
      // Leftovers of an interrupted concurrent index build are dropped, so the plan builds them again.
      if (only.has('schema')) await this.dropInvalidIndexes(run, pools, schema, expected.schemas);
      await this.driftGate(run, pools, expected, schema);
      let plans: PlannedConnection[] | undefined;
      if (only.has('schema')) {
        const planned = await this.planAll(run, pools, schema, expected.schemas);
        plans = planned.map((p) => summarize(p.plan, mode));
        this.refusalGate(run, planned, plans, states);
        const blocked = planned.flatMap((p) => p.plan.steps.filter((s) => s.destructive).map((s) => `${p.connection}: ${s.description} (${s.hazards.map((h) => h.kind).join(', ')})`));
        if (blocked.length > 0 && !request.force) {
          this.step(run, { name: 'plan', state: 'Failed', reason: PipelineReason.DestructiveChange, message: `${blocked.length} destructive step(s)` });
          throw new PipelineError(`the plan has destructive steps; nothing was applied. Re-run with --force to apply them:\n${blocked.map((b) => `  - ${b}`).join('\n')}`, PipelineReason.DestructiveChange, { plans });
        }
        if (mode !== 'online') await this.requireLockCapacity(run, planned);
        if (mode === 'two-phase') await this.applyTwoPhase(run, planned, release, Boolean(request.force), states);
        else for (const p of planned) await this.applyOne(run, p.connection, p.sql, p.plan, release, Boolean(request.force), mode, states);
        await this.requireSatisfied(run, pools, schema, PipelineReason.SchemaDrift, `after applying release ${release.metadata.name} the databases still differ from it`);
      } else if (only.has('release')) {
        await this.requireSatisfied(run, pools, schema, PipelineReason.SchemaDrift, `--only ${[...only].join(',')} skips DDL, but the databases do not satisfy release ${release.metadata.name}`);
      }
      // The release is served only once every connection is at it (the drift check above).
      if (only.has('permissions')) await this.snapshotPermissions(run, release);
      if (only.has('release')) this.movePointer(run, release, 'apply');
      return plans ? { plans } : {};
    } finally {
      publish();
    }
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
    return fetchRelease(this.client, env.metadata.namespace!, id);
  }

  /**
   * The schema and permissions of a release, read once per run: inline from the Release, chunked
   * from its ConfigMaps (a missing chunk is retried, a digest mismatch refused; core/release/content.ts).
   */
  private contentOf(run: PipelineRun, release: Rel): Promise<ReleaseBody> {
    let cache = this.contents.get(run);
    if (!cache) this.contents.set(run, (cache = new Map()));
    const key = release.metadata.uid ?? release.metadata.name;
    let body = cache.get(key);
    if (!body) cache.set(key, (body = readReleaseContent(this.client, release)));
    return body;
  }

  /** One pool per connection the release's schema names; a missing Connection is terminal, an unreachable one retried. */
  private async connect(run: PipelineRun, schema: Record<string, SchemaIR>): Promise<Map<string, postgres.Sql>> {
    const pools = new Map<string, postgres.Sql>();
    const names = Object.keys(schema).sort();
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
      let version = 0;
      try {
        const sql = await this.databases.pool(conn);
        const [row] = await sql<{ v: number }[]>`SELECT pg_catalog.current_setting('server_version_num')::int AS v`;
        pools.set(name, sql);
        version = row?.v ?? 0;
      } catch (err) {
        const e = err instanceof SantokitError ? err : databaseError(err);
        throw new SantokitErrorWithReason(`connection ${name}: ${e.message}`, PipelineReason.ConnectionFailed, e);
      }
      // A server too old for the schema engine is refused at connect, before anything is read.
      const unsupported = unsupportedPostgres(version, name);
      if (unsupported) throw withConnection(unsupported, name);
    }
    return pools;
  }

  private async planAll(run: PipelineRun, pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR>, previous: Record<string, SchemaIR | undefined>) {
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

  /** The release each connection's database records it is at (santokit.release_at). */
  private async releasesAt(pools: Map<string, postgres.Sql>): Promise<Map<string, ReleaseAt | null>> {
    const out = new Map<string, ReleaseAt | null>();
    for (const [connection, sql] of pools) {
      try {
        out.set(connection, await readReleaseAt(sql, connection));
      } catch (err) {
        throw new SantokitErrorWithReason(`connection ${connection}: reading its bookkeeping failed: ${asSantokitError(err).message}`, PipelineReason.ConnectionFailed, databaseError(err));
      }
    }
    return out;
  }

  /**
   * What each connection is judged against: the schema of the release its database records it is
   * at (a connection that already reached the target, or an older release, is judged by that), else
   * the environment's current release. A connection with neither is not judged (nothing applied yet).
   */
  private async expectedSchemas(run: PipelineRun, at: Map<string, ReleaseAt | null>, target: Rel, current: Rel | undefined): Promise<{ schemas: Record<string, SchemaIR | undefined>; releases: Record<string, string | undefined> }> {
    const schemas: Record<string, SchemaIR | undefined> = {};
    const releases: Record<string, string | undefined> = {};
    const cache = new Map<string, Rel | undefined>([[target.metadata.name, target]]);
    if (current) cache.set(current.metadata.name, current);
    for (const [connection, rec] of at) {
      let rel: Rel | undefined;
      if (rec) {
        if (!cache.has(rec.releaseId)) cache.set(rec.releaseId, await this.findRelease(run.env, rec.releaseId));
        rel = cache.get(rec.releaseId);
      }
      // A release recorded there but deleted since, or none recorded: the current release.
      rel ??= current;
      if (!rel) continue;
      schemas[connection] = (await this.contentOf(run, rel)).schema[connection] ?? schemaOf([]);
      releases[connection] = rel.metadata.name;
    }
    return { schemas, releases };
  }

  /**
   * Steps Postgres would refuse (a unique key over duplicates, NOT NULL over NULLs, a cast the data
   * does not allow, an object Santokit does not manage depending on it) are refused before any
   * connection changes: --force cannot help, so the message says what to fix instead.
   */
  private refusalGate(run: PipelineRun, planned: Array<{ connection: string; plan: SchemaPlan }>, plans: PlannedConnection[], states: Map<string, ConnectionReleaseState>): void {
    const refused = planned.flatMap((p) => {
      const steps = blockedSteps(p.plan, { force: true });
      return steps.length > 0 ? [{ connection: p.connection, steps }] : [];
    });
    if (refused.length === 0) return;
    const lines = refused.flatMap((r) => r.steps.map((s) => `  - connection ${r.connection}: step ${s.number} (${s.description}): ${s.hazards.map((h) => `${h.kind}: ${h.message}`).join('; ')}`));
    const kinds = new Set(refused.flatMap((r) => r.steps.flatMap((s) => s.hazards.map((h) => h.kind))));
    const fixes = [
      ...(kinds.has('cannot_apply') ? ['fix the data each reason names (remove the duplicates, fill the NULLs, correct the values), or change the declaration'] : []),
      ...(kinds.has('untrackable_dependencies') ? ['drop (or change) the object that depends on it, or keep the declaration as it was'] : []),
    ];
    const hint = `${fixes.join('; ')}; then apply the same release again. Force does not help: Postgres refuses these steps either way`;
    for (const r of refused) {
      const message = `${r.steps.length} step(s) refused: ${r.steps.map((s) => `step ${s.number} (${s.description})`).join(', ')}`;
      this.step(run, { name: 'plan', connection: r.connection, state: 'Failed', reason: PipelineReason.PlanRefused, message });
      const first = r.steps[0]!;
      states.set(r.connection, { ...states.get(r.connection)!, state: 'Failed', reason: PipelineReason.PlanRefused, message: statusMessage(`${message}: ${first.hazards.map((h) => h.message).join('; ')}`), failedStep: `step ${first.number} (${first.description})` });
    }
    const names = refused.map((r) => r.connection);
    const err = new PipelineError(
      `the plan of connection${names.length === 1 ? '' : 's'} ${names.join(', ')} has steps the database would refuse; nothing was applied on any connection:\n${lines.join('\n')}\nwhat to do: ${hint}`,
      PipelineReason.PlanRefused,
      { plans },
      hint,
    );
    throw withConnection(err, names[0]!);
  }

  /** Drops INVALID indexes (an interrupted CREATE INDEX CONCURRENTLY) on the managed tables, so the plan builds them again. */
  private async dropInvalidIndexes(run: PipelineRun, pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR>, previous: Record<string, SchemaIR | undefined>): Promise<void> {
    for (const [connection, sql] of pools) {
      const dropped = await dropInvalidIndexes(sql, managedTablesOf(schema[connection]!, previous[connection] ?? null)).catch((err: unknown) => {
        throw withConnection(asSantokitError(err), connection);
      });
      if (dropped.length > 0) run.log.info({ connection, indexes: dropped }, 'dropped invalid indexes left by an interrupted concurrent build; they are built again');
    }
  }

  /** Transactional and two-phase modes: every plan must fit the server's lock table, checked before any DDL anywhere. */
  private async requireLockCapacity(run: PipelineRun, planned: Array<{ connection: string; sql: postgres.Sql; plan: SchemaPlan }>): Promise<void> {
    for (const p of planned) {
      if (p.plan.steps.length === 0) continue;
      const refusal = lockRefusal(p.plan, await lockCapacity(p.sql));
      if (refusal) {
        this.step(run, { name: 'apply', connection: p.connection, state: 'Failed', reason: refusal.reason, message: refusal.message });
        throw withConnection(refusal, p.connection);
      }
    }
  }

  private async applyOne(run: PipelineRun, connection: string, sql: postgres.Sql, plan: SchemaPlan, release: Rel, force: boolean, mode: ApplyMode, states: Map<string, ConnectionReleaseState>): Promise<void> {
    const state = states.get(connection)!;
    const options = { releaseId: release.metadata.name, ref: release.spec.ref, force, skipLockEstimate: true };
    try {
      if (plan.steps.length === 0) {
        // Nothing to change: still record that this connection is at the release (no DDL, no applied row).
        await applyPlan(sql, plan, { ...options, recordApplied: false });
        this.step(run, { name: 'apply', connection, state: 'Skipped', message: 'nothing to change' });
      } else if (mode === 'online') {
        const result = await applyPlanOnline(sql, plan, options);
        this.step(run, { name: 'apply', connection, state: 'Succeeded', message: `${result.statements.length} statement(s) online${result.retried > 0 ? `, ${result.retried} retried for a lock` : ''}${result.rebuiltIndexes.length > 0 ? `, rebuilt ${result.rebuiltIndexes.join(', ')}` : ''}` });
      } else {
        const result = await applyPlan(sql, plan, options);
        this.step(run, { name: 'apply', connection, state: 'Succeeded', message: `${result.statements.length} statement(s) in one transaction` });
      }
      states.set(connection, { name: connection, release: release.metadata.name, mode: plan.steps.length === 0 ? 'transactional' : mode, state: 'AtTarget' });
    } catch (err) {
      const e = withConnection(asSantokitError(err), connection);
      states.set(connection, { ...state, state: 'Failed', reason: e.reason, message: statusMessage(e.message), ...(failedStepOf(err) ? { failedStep: failedStepOf(err)! } : {}) });
      this.step(run, { name: 'apply', connection, state: 'Failed', reason: e.reason, message: e.message });
      throw e;
    }
  }

  /**
   * Two-phase mode: every connection's transaction is prepared (PREPARE TRANSACTION, gid naming the
   * release and the connection), then all are committed (COMMIT PREPARED). A failure before the
   * last PREPARE rolls the prepared ones back: no connection changes. A crash after it leaves them
   * in doubt; `recoverPrepared` finishes them on the next run.
   */
  private async applyTwoPhase(run: PipelineRun, planned: Array<{ connection: string; sql: postgres.Sql; plan: SchemaPlan }>, release: Rel, force: boolean, states: Map<string, ConnectionReleaseState>): Promise<void> {
    for (const p of planned) {
      const [row] = await p.sql<{ n: number }[]>`SELECT pg_catalog.current_setting('max_prepared_transactions')::int AS n`;
      if (!row || row.n <= 0) {
        const err = new ConflictError(`connection ${p.connection}: two-phase commit needs max_prepared_transactions > 0 on its server (it is ${row?.n ?? 0}); nothing was applied`, {
          reason: PipelineReason.TwoPhaseUnavailable,
          hint: 'set max_prepared_transactions (restart needed) on every server of the environment, or apply in transactional mode',
        });
        this.step(run, { name: 'apply', connection: p.connection, state: 'Failed', reason: err.reason, message: err.message });
        throw withConnection(err, p.connection);
      }
    }
    const prepared: Array<{ connection: string; sql: postgres.Sql; gid: string }> = [];
    for (const p of planned) {
      const gid = preparedTransactionId(release.metadata.name, p.connection);
      try {
        await applyPlan(p.sql, p.plan, { releaseId: release.metadata.name, ref: release.spec.ref, force, prepareAs: gid, skipLockEstimate: true, recordApplied: p.plan.steps.length > 0 });
        prepared.push({ connection: p.connection, sql: p.sql, gid });
        states.set(p.connection, { ...states.get(p.connection)!, state: 'InDoubt' });
      } catch (err) {
        for (const q of prepared) {
          await finishPrepared(q.sql, q.gid, false).catch((e: unknown) => run.log.warn({ connection: q.connection, err: asSantokitError(e).message }, 'could not roll back a prepared transaction; the next run settles it'));
          states.set(q.connection, { ...states.get(q.connection)!, state: 'Behind' });
        }
        const e = withConnection(asSantokitError(err), p.connection);
        states.set(p.connection, { ...states.get(p.connection)!, state: 'Failed', reason: e.reason, message: statusMessage(e.message), ...(failedStepOf(err) ? { failedStep: failedStepOf(err)! } : {}) });
        this.step(run, { name: 'apply', connection: p.connection, state: 'Failed', reason: e.reason, message: `${e.message} (two-phase: no connection was changed)` });
        throw e;
      }
    }
    if (this.options.testPauseAt === 'two-phase-prepared') {
      run.log.warn({ prepared: prepared.map((p) => p.gid) }, 'test pause point two-phase-prepared reached: stopping here');
      await new Promise<never>(() => {});
    }
    for (const q of prepared) {
      await finishPrepared(q.sql, q.gid, true);
      const p = planned.find((x) => x.connection === q.connection)!;
      states.set(q.connection, { name: q.connection, release: release.metadata.name, mode: 'two-phase', state: 'AtTarget' });
      this.step(run, { name: 'apply', connection: q.connection, state: p.plan.steps.length === 0 ? 'Skipped' : 'Succeeded', message: p.plan.steps.length === 0 ? 'nothing to change' : `${p.plan.steps.length} statement(s), two-phase commit` });
    }
  }

  /**
   * Settles the in-doubt prepared transactions a crashed run left in the env's databases. The
   * decision is the one the crashed run would have made: a release whose transaction is prepared or
   * already committed on every connection it names is committed everywhere; one that some
   * connection never prepared is rolled back (that connection's session is gone, it cannot prepare
   * any more).
   */
  private async recoverPrepared(run: PipelineRun, pools: Map<string, postgres.Sql>, _target: string): Promise<void> {
    const found: Array<{ connection: string; sql: postgres.Sql; gid: string; releaseId: string }> = [];
    for (const [connection, sql] of pools) {
      for (const p of await listPrepared(sql)) if (p.connection === connection) found.push({ connection, sql, gid: p.gid, releaseId: p.releaseId });
    }
    for (const releaseId of new Set(found.map((f) => f.releaseId))) {
      const mine = found.filter((f) => f.releaseId === releaseId);
      const rel = await this.findRelease(run.env, releaseId);
      const names = rel ? Object.keys((await this.contentOf(run, rel)).schema) : [...pools.keys()];
      let commit = rel !== undefined;
      for (const name of names) {
        if (mine.some((m) => m.connection === name)) continue;
        const sql = pools.get(name);
        const rec = sql ? await readReleaseAt(sql, name) : null;
        if (rec?.releaseId !== releaseId) commit = false;
      }
      for (const m of mine) {
        await finishPrepared(m.sql, m.gid, commit);
        run.log.info({ connection: m.connection, release: releaseId, gid: m.gid, outcome: commit ? 'committed' : 'rolled back' }, 'settled an in-doubt two-phase transaction');
        void this.events.record(Kinds.Environment, run.env, 'Normal', 'InDoubtSettled', `connection ${m.connection}: prepared transaction of release ${releaseId} ${commit ? 'committed' : 'rolled back'} after an interrupted two-phase apply`);
      }
    }
  }

  /** Compares each connection's live schema with the declared one: one line per difference, and a fingerprint of what is live. */
  private async driftOf(pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR | undefined>): Promise<{ lines: string[]; fingerprint: string; byConnection: Map<string, string[]> }> {
    const lines: string[] = [];
    const hashes: Record<string, string> = {};
    const byConnection = new Map<string, string[]>();
    for (const [connection, declared] of Object.entries(schema).sort(([a], [b]) => a.localeCompare(b))) {
      const sql = pools.get(connection);
      if (!sql || !declared) continue;
      const live = await introspectSchema(sql, { managedTables: Object.keys(declared.tables) });
      const mine = compareSchemas(declared, live.ir).map((d) => `${connection}: ${d.message}`);
      byConnection.set(connection, mine);
      lines.push(...mine);
      hashes[connection] = hashSchema(live.ir);
    }
    return { lines, fingerprint: sha256Hex(canonicalJson(hashes)), byConnection };
  }

  /**
   * Checks the env's databases against its current release and records the result: `status.drift`,
   * the live-schema fingerprint, and a `Drifted` condition with an Event when it appears or clears.
   */
  private async recordDrift(run: PipelineRun, pools: Map<string, postgres.Sql>, schema: Record<string, SchemaIR | undefined>, releaseId: string): Promise<string[]> {
    const { lines, fingerprint } = await this.driftOf(pools, schema);
    const { status, env } = run;
    const before = findCondition(status, 'Drifted')?.status;
    // Bounded: a large schema can drift in thousands of places, and the status must stay writable.
    status.drift = lines.length > STATUS_DRIFT_LINES ? [...lines.slice(0, STATUS_DRIFT_LINES), `… ${lines.length - STATUS_DRIFT_LINES} more`] : lines;
    status.lastDriftCheck = nowIso();
    status.liveSchemaHash = fingerprint;
    const drifted = lines.length > 0;
    status.conditions = setCondition(
      status.conditions,
      drifted
        ? { type: 'Drifted', status: 'True', reason: PipelineReason.SchemaDrift, message: statusMessage(`${lines.length} difference(s) from release ${releaseId}:\n${lines.join('\n')}`) }
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
    const pools = await this.connect(full, (await this.contentOf(full, release)).schema);
    const expected = await this.expectedSchemas(full, await this.releasesAt(pools), release, release);
    await this.recordDrift(full, pools, expected.schemas, id);
  }

  /**
   * Each connection's database must still match the release it records it is at (else the env's
   * current release) before anything changes. A connection that already matches the target passes
   * too (its schema was applied with --only schema, or by an earlier run that failed elsewhere).
   */
  private async driftGate(run: PipelineRun, pools: Map<string, postgres.Sql>, expected: { schemas: Record<string, SchemaIR | undefined>; releases: Record<string, string | undefined> }, targetSchema: Record<string, SchemaIR>): Promise<void> {
    if (Object.keys(expected.schemas).length === 0) return;
    const label = run.status.currentRelease ?? Object.values(expected.releases).find(Boolean) ?? '-';
    const drift = await this.recordDrift(run, pools, expected.schemas, label);
    if (drift.length === 0) return;
    const target = await this.driftOf(pools, targetSchema);
    const { byConnection } = await this.driftOf(pools, expected.schemas);
    const blocking: string[] = [];
    for (const [connection, lines] of byConnection) {
      if (lines.length > 0 && (target.byConnection.get(connection) ?? []).length > 0) blocking.push(...lines);
    }
    if (blocking.length === 0) return;
    const against = [...new Set(Object.entries(expected.releases).filter(([c]) => (byConnection.get(c) ?? []).length > 0).map(([c, r]) => `${c} at ${r}`))].join(', ');
    this.step(run, { name: 'drift', state: 'Failed', reason: PipelineReason.SchemaDrift, message: `${blocking.length} difference(s) (${against})` });
    throw new PipelineError(`the databases of environment ${run.env.metadata.name} drifted from the release each is at (${against}); nothing was applied:\n${blocking.map((d) => `  - ${d}`).join('\n')}\nrevert the manual change, or apply a release that declares it`, PipelineReason.SchemaDrift, { drift: blocking });
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
    // Inline: the spec's policy as it is, the bytes earlier versions wrote (the ConfigMap is immutable).
    const json = JSON.stringify(release.spec.permissions ?? (await this.contentOf(run, release)).permissions);
    // A policy over many tables outgrows a ConfigMap (1 MiB): it is kept compressed then.
    const payload = Buffer.byteLength(json) <= PERMISSIONS_INLINE_BYTES ? { data: { 'permissions.json': json } } : { binaryData: { 'permissions.json.gz': gzipSync(json).toString('base64') } };
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
        ...payload,
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

/** Adds the connection to an error's message (once) and to its details. */
function withConnection<E extends SantokitError>(err: E, connection: string): E {
  Object.defineProperty(err, CONNECTION, { value: connection, enumerable: false, configurable: true });
  return err;
}

const CONNECTION = Symbol('santokit.connection');

/** The connection an apply error belongs to, if any. */
export function connectionOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as { [CONNECTION]?: string })[CONNECTION] : undefined;
}

/** A failure message fit for status: secrets redacted, bounded. */
function statusMessage(message: string): string {
  const clean = redactSecrets(message);
  return clean.length > 2_000 ? `${clean.slice(0, 2_000)}…` : clean;
}

/**
 * A plan as recorded in the Environment's status (and printed by stk). A plan of thousands of
 * tables would make the status larger than etcd takes (1.5 MiB), and the status write would fail:
 * it keeps every destructive step and the first STATUS_PLAN_STEPS others, and the text's first
 * STATUS_PLAN_TEXT_BYTES, saying how much was left out.
 */
function summarize(plan: SchemaPlan, mode: ApplyMode): PlannedConnection {
  const steps = plan.steps.map((s) => ({ description: s.description, sql: s.sql, destructive: s.destructive, hazards: s.hazards.map((h) => h.kind) }));
  let others = 0;
  const kept = steps.filter((s) => s.destructive || others++ < STATUS_PLAN_STEPS);
  let text = renderPlan(plan) + renderMode(plan, mode);
  if (text.length > STATUS_PLAN_TEXT_BYTES) {
    const cut = text.lastIndexOf('\n', STATUS_PLAN_TEXT_BYTES);
    const rest = text.slice(cut + 1).split('\n').filter(Boolean).length;
    text = `${text.slice(0, cut + 1)}… ${rest} more line(s) not kept in status (${plan.steps.length} steps in all)\n`;
  }
  const omitted = steps.length - kept.length;
  return { connection: plan.connection, mode, text, steps: kept, ...(omitted > 0 ? { omittedSteps: omitted } : {}) };
}

/** how many non-destructive steps of a plan the Environment's status keeps */
const STATUS_PLAN_STEPS = 200;
/** how much of a plan's text the Environment's status keeps */
const STATUS_PLAN_TEXT_BYTES = 64 * 1024;
/** how many drift lines the Environment's status keeps */
const STATUS_DRIFT_LINES = 500;

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
