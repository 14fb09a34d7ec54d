import { isConditionTrue, markReady, markRetrying, Reason } from '../../core/api/conditions.ts';
import { Kinds, projectNamespace, type Environment, type EnvironmentStatus, type Project } from '../../core/api/resources.ts';
import { ConflictError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { Informer } from '../../core/kube/informer.ts';
import type { ReconcileContext, ReconcileRequest, Reconciler, WatchMapping } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus } from '../runtime/skeleton.ts';

const projectWaitMs = 5_000;

/** An Environment is Ready once its Project exists, is Ready, and owns the namespace the Environment lives in. */
export class EnvironmentReconciler implements Reconciler {
  readonly name = 'environment';
  readonly kind = Kinds.Environment;

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
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

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Environment, EnvironmentStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      work: async ({ obj, status, generation }) => {
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
        status.conditions = markReady(status.conditions, Reason.Succeeded, `environment of project ${obj.spec.project}`, generation);
      },
    });
  }
}
