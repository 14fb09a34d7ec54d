import { isConditionTrue, markReady, markReconciling, markRetrying, markStalled, Reason } from '../../core/api/conditions.ts';
import {
  Annotations,
  Kinds,
  projectNamespace,
  type Environment,
  type EnvironmentStatus,
  type Project,
  type ReleaseRequest,
  type RequestOutcome,
} from '../../core/api/resources.ts';
import { asSantokitError, ConflictError, ValidationError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { Informer } from '../../core/kube/informer.ts';
import { redactSecrets } from '../../core/redact.ts';
import { connectionOf, PipelineError, PipelineReason, type ReleasePipeline } from '../pipeline.ts';
import type { ReconcileContext, ReconcileRequest, Reconciler, WatchMapping } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus, type ReconcileScope } from '../runtime/skeleton.ts';

const projectWaitMs = 5_000;
/** id prefix of the requests the reconciler makes itself for a changed `spec.release` */
const SPEC_REQUEST = 'spec-';

/**
 * An Environment is Ready once its Project exists and owns its namespace, and its current release
 * is the desired one. Requests from `stk` (annotation `santokit.io/request`: apply, plan, promote,
 * rollback) run the release pipeline once each, their outcome recorded in `status.lastRequest`;
 * a change of `spec.release` without a request (GitOps) runs a full apply, or a rollback when the
 * environment has served that release before.
 */
export class EnvironmentReconciler implements Reconciler {
  readonly name = 'environment';
  readonly kind = Kinds.Environment;

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly pipeline: ReleasePipeline,
    private readonly driftIntervalMs: number,
  ) {}

  /** A Project change re-checks its Environments. */
  static watchProjects(environments: Informer<Environment & KubeObject>): WatchMapping {
    return {
      kind: Kinds.Project,
      map: (project) =>
        environments
          .list()
          .filter((e) => e.spec.project === project.metadata.name)
          .map((e) => `${e.metadata.namespace}/${e.metadata.name}`),
    };
  }

  /**
   * A GitOps tool may apply an Environment before the Release it names (Flux applies them in one
   * batch): when a Release appears, the Environments whose spec names it are looked at again.
   */
  static watchReleases(environments: Informer<Environment & KubeObject>): WatchMapping {
    return {
      kind: Kinds.Release,
      map: (release) =>
        environments
          .list()
          .filter((e) => e.metadata.namespace === release.metadata.namespace && e.spec.release === release.metadata.name)
          .map((e) => `${e.metadata.namespace}/${e.metadata.name}`),
    };
  }

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Environment, EnvironmentStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      work: async (scope) => {
        const { obj, status, generation } = scope;
        const project = await this.client.find<Project & KubeObject>(Kinds.Project, obj.spec.project);
        if (!project) {
          status.conditions = markRetrying(status.conditions, Reason.ProjectNotFound, `project ${obj.spec.project} does not exist`, generation);
          return { requeueAfterMs: projectWaitMs };
        }
        if (projectNamespace(project) !== obj.metadata.namespace) {
          throw new ConflictError(`environment ${obj.metadata.name} is in namespace ${obj.metadata.namespace}, but project ${project.metadata.name} owns namespace ${projectNamespace(project)}`, {
            reason: Reason.ProjectMismatch,
          });
        }
        if (!isConditionTrue(project.status, 'Ready')) {
          status.conditions = markRetrying(status.conditions, Reason.ProjectNotReady, `project ${obj.spec.project} is not ready yet`, generation);
          return { requeueAfterMs: projectWaitMs };
        }

        // An annotation is answered once: a later GitOps change of the spec must not make the
        // request stk made before look new again (that would move the pointer back).
        const pending = parseRequest(obj);
        if (pending && pending.id !== (status.handledRequest ?? status.lastRequest?.id)) return this.handle(scope, pending);

        const desired = obj.spec.release;
        if (desired && desired !== status.currentRelease) {
          // A request already decided this very spec: do not run it again as an apply.
          const decided = status.lastRequest && status.lastRequest.release === desired && status.lastRequest.generation === generation;
          // A failed request of stk is answered: stk puts the pointer back, and the spec must not re-run
          // it at once in the meantime (in another mode, say transactional for a two-phase request).
          const answeredToStk = !status.lastRequest?.id.startsWith(SPEC_REQUEST);
          if (decided && status.lastRequest?.outcome === 'Failed' && (!status.lastRequest.retryable || answeredToStk)) {
            // The spec named a Release that was not there yet (applied after the Environment): once
            // it exists (watchReleases enqueues us), the request runs again.
            const arrived = status.lastRequest.reason === PipelineReason.ReleaseNotFound && (await this.client.find(Kinds.Release, desired, obj.metadata.namespace)) !== undefined;
            if (!arrived) {
              // A connection's DDL failed (data, say): the others may be at the release already. The
              // spec asks for it, so try again every drift interval: once the cause is fixed, the
              // remaining connections finish without anyone touching the spec.
              if (!status.lastRequest.connection || !status.lastRequest.at) return;
              const due = Date.parse(status.lastRequest.at) + this.driftIntervalMs - Date.now();
              if (due > 1_000) return { requeueAfterMs: due };
            }
          }
          // A release this environment served before is a rollback (a `git revert` of a promote):
          // the pointer moves back and no DDL runs. Anything else is applied through every gate.
          const served = (status.history ?? []).some((h) => h.release === desired);
          const action = served ? 'rollback' : 'apply';
          return this.handle(scope, { id: `${SPEC_REQUEST}${generation}`, action, release: desired, force: Boolean(obj.spec.force) });
        }
        const serving = status.currentRelease ? `serving release ${status.currentRelease}` : 'no release applied yet';
        status.conditions = markReady(status.conditions, Reason.Succeeded, serving, generation);
        if (!status.currentRelease) return;
        // Drift is checked periodically, not only at apply: someone may ALTER a table at any time.
        const last = status.lastDriftCheck ? Date.parse(status.lastDriftCheck) : 0;
        const due = last + this.driftIntervalMs - Date.now();
        if (due > 1_000) return { requeueAfterMs: due };
        try {
          await this.pipeline.checkCurrentDrift({ env: obj as Environment & KubeObject, status, log: context.log });
        } catch (err) {
          context.log.info({ reason: asSantokitError(err).reason }, 'periodic drift check could not run');
        }
        return { requeueAfterMs: this.driftIntervalMs };
      },
    });
  }

  /** Runs one request through the pipeline and records its outcome. */
  private async handle(scope: ReconcileScope<Environment, EnvironmentStatus>, request: ReleaseRequest): Promise<void> {
    const { obj, status, generation, context } = scope;
    const outcome: RequestOutcome = { id: request.id, action: request.action, release: request.release, outcome: 'Succeeded', generation, at: new Date().toISOString() };
    if (!request.id.startsWith(SPEC_REQUEST)) status.handledRequest = request.id;
    status.conditions = markReconciling(status.conditions, Reason.Progressing, `${request.action} ${request.release}`, generation);
    try {
      const result = await this.pipeline.run({ env: obj as Environment & KubeObject, status, request, log: context.log });
      if (result.plans) outcome.plans = result.plans;
      if (result.drift) outcome.drift = result.drift;
      status.lastRequest = outcome;
      const serving = status.currentRelease ? `serving release ${status.currentRelease}` : 'no release applied yet';
      status.conditions = markReady(status.conditions, Reason.Succeeded, serving, generation);
    } catch (thrown) {
      const err = asSantokitError(thrown);
      const message = redactSecrets(err.message);
      const connection = connectionOf(err);
      status.lastRequest = { ...outcome, outcome: 'Failed', reason: err.reason, message, retryable: err.retryable, ...(err instanceof PipelineError ? err.details : {}), ...(connection ? { connection } : {}) };
      // The condition's reason names the connection whose step failed: `SchemaApplyFailed:main`.
      const reason = connection ? `${err.reason}:${connection.replace(/[^A-Za-z0-9_]/g, '_')}` : err.reason;
      if (err.reason === PipelineReason.ReleaseNotFound && request.id.startsWith(SPEC_REQUEST)) {
        // A GitOps tool may apply the Environment a moment before the Release it names. That is a
        // wait, not a refusal: Reconciling (never Stalled, which a health check reads as failed)
        // until the Release exists; its watch runs the request again then.
        status.conditions = markRetrying(status.conditions, reason, `${message}: waiting for it to be applied`, generation);
        return;
      }
      if (err.retryable) {
        // Back off and retry when the spec asks for it; a request from stk is answered once.
        status.conditions = markRetrying(status.conditions, reason, message, generation);
        if (request.id.startsWith(SPEC_REQUEST)) throw err;
        return;
      }
      // A gate refused or input is wrong: the previous release keeps serving until something changes.
      status.conditions = markStalled(status.conditions, reason, message, generation);
      context.log.info({ reason: err.reason, action: request.action, release: request.release }, 'request refused');
    }
  }
}

/** The request annotation, if present and well formed. */
function parseRequest(env: Environment): ReleaseRequest | undefined {
  const raw = env.metadata.annotations?.[Annotations.request];
  if (!raw) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ValidationError(`annotation ${Annotations.request} is not valid JSON`);
  }
  const r = value as Partial<ReleaseRequest>;
  if (typeof r.id !== 'string' || typeof r.release !== 'string' || !['apply', 'plan', 'promote', 'rollback', 'drift'].includes(String(r.action))) {
    throw new ValidationError(`annotation ${Annotations.request} must hold {id, action: apply|plan|promote|rollback|drift, release}`);
  }
  return r as ReleaseRequest;
}
