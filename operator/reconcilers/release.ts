import { findCondition, markReady, markReconciling, markRetrying, markStalled, Reason, setCondition } from '../../core/api/conditions.ts';
import {
  Kinds,
  RELEASE_IN_USE_FINALIZER,
  type Condition,
  type Environment,
  type GitHubStatusReport,
  type Release,
  type ReleaseStatus,
} from '../../core/api/resources.ts';
import { asSantokitError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { adoptReleaseChunks, readChunkedRelease } from '../../core/release/content.ts';
import type { Informer } from '../../core/kube/informer.ts';
import { classifyGitHubFailure, commitStatusContext, commitStatusDescription, GITHUB_CONDITION, GitHubReason, GitHubReportError, supersededReports, type CommitStatusReporter } from '../github/commit-status.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler, WatchMapping } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus, type ReconcileScope } from '../runtime/skeleton.ts';

const inUseRecheckMs = 10_000;
/** how often a release whose GitHub token failed (or is missing) looks at the Secret again */
const secretRecheckMs = 10_000;
const backoffBaseMs = 1_000;
const backoffMaxMs = 300_000;
/** a missing chunk is looked for again at most this far apart */
const contentBackoffMaxMs = 30_000;
/** a chunk whose digest did not match is looked at again this often (it may be replaced) */
const contentRecheckMs = 60_000;

type Env = Environment & KubeObject;
type Rel = Release & KubeObject;

/** Which environments of the namespace name a release: desired, current or in history. */
export function environmentsNaming(environments: Env[], namespace: string | undefined, release: string): string[] {
  return environments
    .filter((e) => e.metadata.namespace === namespace)
    .filter((e) => e.spec.release === release || e.status?.currentRelease === release || (e.status?.history ?? []).some((h) => h.release === release))
    .map((e) => e.metadata.name)
    .sort();
}

/** Environments of the namespace whose current release this is. */
export function environmentsServing(environments: Env[], namespace: string | undefined, release: string): string[] {
  return environments
    .filter((e) => e.metadata.namespace === namespace && e.status?.currentRelease === release)
    .map((e) => e.metadata.name)
    .sort();
}

/** How one environment that wants a release (its `spec.release`) is doing with it. */
export type EnvironmentVerdict =
  | { environment: string; outcome: 'served' }
  | { environment: string; outcome: 'applying' }
  | { environment: string; outcome: 'refused' | 'retrying'; reason: string; message: string };

/** The verdict of every environment of the namespace whose `spec.release` names the release, by name. */
export function releaseVerdicts(environments: Env[], namespace: string | undefined, release: string): EnvironmentVerdict[] {
  return environments
    .filter((e) => e.metadata.namespace === namespace && e.spec.release === release)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((e): EnvironmentVerdict => {
      const environment = e.metadata.name;
      if (e.status?.currentRelease === release) return { environment, outcome: 'served' };
      const last = e.status?.lastRequest;
      if (last?.release === release && last.outcome === 'Failed') {
        const reason = last.reason ?? Reason.ReconcileError;
        if (last.retryable) return { environment, outcome: 'retrying', reason, message: last.message ?? reason };
        // A refusal counts while the environment still says so: a new spec (force) clears Stalled.
        const stalled = findCondition(e.status, 'Stalled');
        if (stalled?.status === 'True') return { environment, outcome: 'refused', reason: stalled.reason, message: stalled.message || last.message || reason };
      }
      return { environment, outcome: 'applying' };
    });
}

/**
 * The Release's own conditions from its environments' verdicts (kstatus: Flux `wait` and Argo CD
 * read these): a refusal is Stalled, a retryable failure Reconciling with Ready=False, an apply in
 * flight Reconciling, and Ready once every environment that wants it serves it. A release no
 * environment wants is simply Available.
 */
export function releaseConditions(conditions: Condition[] | undefined, verdicts: EnvironmentVerdict[], namedBy: string[], generation: number | undefined): Condition[] {
  const refused = verdicts.find((v) => v.outcome === 'refused');
  if (refused?.outcome === 'refused') return markStalled(conditions, refused.reason, `environment ${refused.environment}: ${refused.message}`, generation);
  const retrying = verdicts.find((v) => v.outcome === 'retrying');
  if (retrying?.outcome === 'retrying') return markRetrying(conditions, retrying.reason, `environment ${retrying.environment}: ${retrying.message}`, generation);
  const applying = verdicts.find((v) => v.outcome === 'applying');
  if (applying) return markReconciling(conditions, Reason.Progressing, `environment ${applying.environment} is applying it`, generation);
  if (verdicts.length > 0) return markReady(conditions, Reason.Succeeded, `served by ${verdicts.map((v) => v.environment).join(', ')}`, generation);
  return markReady(conditions, 'Available', namedBy.length > 0 ? `named by ${namedBy.join(', ')}` : 'not named by any environment', generation);
}

/** The commit status that tells GitHub an environment's verdict. */
export function commitStatusFor(verdict: EnvironmentVerdict, release: string): GitHubStatusReport {
  const environment = verdict.environment;
  switch (verdict.outcome) {
    case 'served':
      return { environment, state: 'success', description: commitStatusDescription(`release ${release} serves ${environment}`) };
    case 'applying':
      return { environment, state: 'pending', description: commitStatusDescription(`${environment} is applying release ${release}`) };
    case 'refused':
      return { environment, state: 'failure', description: commitStatusDescription(`${verdict.reason}: ${verdict.message}`) };
    case 'retrying':
      return { environment, state: 'error', description: commitStatusDescription(`${verdict.reason}: ${verdict.message}`) };
  }
}

/** Reports not posted yet: an environment's (state, description) goes to GitHub once. */
export function reportsDue(wanted: GitHubStatusReport[], reported: GitHubStatusReport[] | undefined): GitHubStatusReport[] {
  return wanted.filter((w) => !(reported ?? []).some((r) => r.environment === w.environment && r.state === w.state && r.description === w.description));
}

/**
 * Releases are immutable snapshots. This reconciler keeps a finalizer on each so that deleting one
 * (a GitOps prune, a stray kubectl delete) waits until no Environment names it any more, reports in
 * the Release's conditions how the environments that want it are doing with it (`servedBy`, Ready,
 * Stalled, Reconciling), and, when `spec.github` asks for it, posts that per environment as a
 * GitHub commit status on `spec.ref`. GitHub's failures never touch Ready: they are recorded in the
 * `GitHubStatusReported` condition and an Event.
 */
export class ReleaseReconciler implements Reconciler {
  readonly name = 'release';
  readonly kind = Kinds.Release;
  /** per release key: 5xx / network attempts in a row, for the backoff */
  private readonly attempts = new Map<string, number>();
  /** per release key: a post refused for the token, and the Secret version and reports it was refused with */
  private readonly blocked = new Map<string, { secretVersion: string; due: string }>();
  /** per release key: the uid whose chunks were verified and owned (chunked releases only) */
  private readonly contentChecked = new Map<string, string | undefined>();
  /** per release key: reads of its chunks that found one missing, in a row, for the backoff */
  private readonly contentAttempts = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly environments: Informer<Env>,
    private readonly reporter: CommitStatusReporter,
  ) {}

  /**
   * An Environment change re-checks the releases it names, and those it named at its previous
   * version (a `spec.release` that moved on leaves the old release to be re-derived).
   */
  static watchEnvironments(): WatchMapping {
    const previous = new Map<string, string[]>();
    return {
      kind: Kinds.Environment,
      map: (env) => {
        const e = env as Env;
        const key = `${e.metadata.namespace}/${e.metadata.name}`;
        const names = [e.spec.release, e.status?.currentRelease, ...(e.status?.history ?? []).map((h) => h.release)].filter((n): n is string => Boolean(n));
        const all = new Set([...names, ...(previous.get(key) ?? [])]);
        previous.set(key, names);
        return [...all].map((n) => `${e.metadata.namespace}/${n}`);
      },
    };
  }

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Release, ReleaseStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      finalizer: RELEASE_IN_USE_FINALIZER,
      gone: async () => {
        this.attempts.delete(request.key);
        this.blocked.delete(request.key);
        this.contentChecked.delete(request.key);
        this.contentAttempts.delete(request.key);
      },
      finalize: async ({ obj, status, generation }) => {
        // Read the Environments fresh: the cache may lag behind a pointer that just moved.
        const { items } = await this.client.list<Env>(Kinds.Environment, { namespace: obj.metadata.namespace! });
        const users = environmentsNaming(items, obj.metadata.namespace, obj.metadata.name);
        if (users.length === 0) return undefined;
        status.conditions = markReconciling(status.conditions, 'InUse', `deletion waits: environment(s) ${users.join(', ')} name this release`, generation);
        return { requeueAfterMs: inUseRecheckMs };
      },
      work: async (scope) => {
        const { obj, status, generation } = scope;
        if (obj.spec.content) {
          const held = await this.checkChunks(request.key, obj as Rel, status, generation);
          if (held) return held;
        }
        const environments = this.environments.list();
        const namespace = obj.metadata.namespace;
        const verdicts = releaseVerdicts(environments, namespace, obj.metadata.name);
        status.servedBy = environmentsServing(environments, namespace, obj.metadata.name);
        status.conditions = releaseConditions(status.conditions, verdicts, environmentsNaming(environments, namespace, obj.metadata.name), generation);
        if (!obj.spec.github) return;
        return this.reportToGitHub(scope, request.key, verdicts);
      },
    });
  }

  /**
   * A chunked Release: its chunk ConfigMaps are read and verified once (digests, content hash),
   * and made owned by the Release (GitOps-written ones cannot name its uid), so deleting it
   * deletes them. A missing chunk (GitOps may apply the ConfigMaps after the Release) is waited
   * for with backoff; a digest that does not match is Stalled, looked at again every minute.
   */
  private async checkChunks(key: string, obj: Rel, status: ReleaseStatus, generation: number | undefined): Promise<ReconcileResult | undefined> {
    if (this.contentChecked.get(key) === obj.metadata.uid) return undefined;
    try {
      // Verified as every reader does (digests, then the content hash; shared with a read in flight), then owned.
      const { chunks } = await readChunkedRelease(this.client, obj);
      await adoptReleaseChunks(this.client, obj, chunks);
    } catch (thrown) {
      const err = asSantokitError(thrown);
      if (err.retryable) {
        const attempt = (this.contentAttempts.get(key) ?? 0) + 1;
        this.contentAttempts.set(key, attempt);
        status.conditions = markRetrying(status.conditions, err.reason, err.message, generation);
        return { requeueAfterMs: jittered(Math.min(contentBackoffMaxMs, backoffBaseMs * 2 ** (attempt - 1))) };
      }
      status.conditions = markStalled(status.conditions, err.reason, err.message, generation);
      await this.events.record(this.kind, obj, 'Warning', err.reason, err.message);
      return { requeueAfterMs: contentRecheckMs };
    }
    this.contentAttempts.delete(key);
    this.contentChecked.set(key, obj.metadata.uid);
    return undefined;
  }

  /** Posts the verdicts GitHub has not been told yet; records what went out in status.github. */
  private async reportToGitHub(scope: ReconcileScope<Release, ReleaseStatus>, key: string, verdicts: EnvironmentVerdict[]): Promise<ReconcileResult | void> {
    const { obj, status, context } = scope;
    const github = obj.spec.github!;
    const environments = this.environments.list().filter((e) => e.metadata.namespace === obj.metadata.namespace);
    const superseded = supersededReports(
      status.github,
      verdicts.map((v) => v.environment),
      environments.map((e) => ({ name: e.metadata.name, release: e.spec.release })),
      obj.metadata.name,
    );
    const due = reportsDue([...verdicts.map((v) => commitStatusFor(v, obj.metadata.name)), ...superseded], status.github);
    if (due.length === 0) return;

    const token = await this.readToken(obj, github.tokenSecretRef);
    if (!token) {
      await this.setGitHubCondition(scope, 'False', GitHubReason.TokenMissing, `Secret ${github.tokenSecretRef.name} (key ${github.tokenSecretRef.key}) is missing or empty in namespace ${obj.metadata.namespace}; create it with a token that may write commit statuses on ${github.repository}`);
      return { requeueAfterMs: secretRecheckMs };
    }
    const signature = JSON.stringify(due);
    const blocked = this.blocked.get(key);
    // The same token was refused for the same reports: wait until the Secret changes.
    if (blocked && blocked.secretVersion === token.version && blocked.due === signature) return { requeueAfterMs: secretRecheckMs };
    this.blocked.delete(key);

    for (const report of due) {
      try {
        await this.reporter.post({ repository: github.repository, sha: obj.spec.ref, token: token.value }, report);
      } catch (err) {
        const failure = err instanceof GitHubReportError ? err : classifyGitHubFailure(err, { repository: github.repository, token: token.value }, Date.now());
        await this.setGitHubCondition(scope, 'False', failure.reason, failure.message);
        if (!failure.transient) {
          this.blocked.set(key, { secretVersion: token.version, due: signature });
          context.log.info({ reason: failure.reason, repository: github.repository }, 'GitHub refused the commit status; waiting for the token Secret to change');
          return { requeueAfterMs: secretRecheckMs };
        }
        const attempt = (this.attempts.get(key) ?? 0) + 1;
        this.attempts.set(key, attempt);
        const retryInMs = failure.retryAfterMs ?? jittered(Math.min(backoffMaxMs, backoffBaseMs * 2 ** (attempt - 1)));
        context.log.info({ reason: failure.reason, repository: github.repository, retryInMs }, 'could not post the commit status; retrying');
        return { requeueAfterMs: retryInMs };
      }
      status.github = [...(status.github ?? []).filter((r) => r.environment !== report.environment), report].sort((a, b) => a.environment.localeCompare(b.environment));
      context.log.info({ repository: github.repository, context: commitStatusContext(report.environment), state: report.state }, 'commit status posted');
    }
    this.attempts.delete(key);
    const summary = (status.github ?? []).map((r) => `${commitStatusContext(r.environment)}=${r.state}`).join(', ');
    await this.setGitHubCondition(scope, 'True', GitHubReason.Reported, `commit statuses on ${github.repository}@${obj.spec.ref.slice(0, 12)}: ${summary}`);
  }

  /** Sets GitHubStatusReported; an Event when it changes status or reason. */
  private async setGitHubCondition(scope: ReconcileScope<Release, ReleaseStatus>, value: 'True' | 'False', reason: string, message: string): Promise<void> {
    const { obj, status, generation } = scope;
    const before = findCondition(status, GITHUB_CONDITION);
    status.conditions = setCondition(status.conditions, { type: GITHUB_CONDITION, status: value, reason, message }, generation);
    if (before?.status === value && before.reason === reason) return;
    // The first success is no news; a failure, and the recovery from one, are.
    if (value === 'True' && before?.status !== 'False') return;
    await this.events.record(this.kind, obj as Rel, value === 'False' ? 'Warning' : 'Normal', reason, message);
  }

  /** The token from the Secret, and the Secret's resourceVersion; undefined when missing or empty. */
  private async readToken(obj: Release, ref: { name: string; key: string }): Promise<{ value: string; version: string } | undefined> {
    const secret = await this.client.find<KubeObject & { data?: Record<string, string> }>(Kinds.Secret, ref.name, obj.metadata.namespace);
    const raw = secret?.data?.[ref.key];
    if (raw === undefined) return undefined;
    const value = Buffer.from(raw, 'base64').toString('utf8').trim();
    return value === '' ? undefined : { value, version: secret?.metadata.resourceVersion ?? '' };
  }
}

function jittered(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}
