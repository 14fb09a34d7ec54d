import { markReady, Reason } from '../../core/api/conditions.ts';
import { API_VERSION, Kinds, Labels, projectNamespace, type Project, type ProjectStatus } from '../../core/api/resources.ts';
import { ConflictError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { ReconcileContext, ReconcileRequest, Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { FIELD_MANAGER, reconcileWithStatus } from '../runtime/skeleton.ts';

/**
 * Creates and labels the project's namespace, owned by the Project: deleting the Project lets
 * the garbage collector delete the namespace and everything in it. Databases are never touched.
 */
export class ProjectReconciler implements Reconciler {
  readonly name = 'project';
  readonly kind = Kinds.Project;

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
  ) {}

  reconcile(request: ReconcileRequest, context: ReconcileContext) {
    return reconcileWithStatus<Project, ProjectStatus>({
      client: this.client,
      events: this.events,
      kind: this.kind,
      request,
      context,
      work: async ({ obj, status, generation }) => {
        const namespace = projectNamespace(obj);
        const existing = await this.client.find<KubeObject & { metadata: { ownerReferences?: Array<{ uid: string }> } }>(Kinds.Namespace, namespace);
        if (existing && !existing.metadata.ownerReferences?.some((o) => o.uid === obj.metadata.uid)) {
          throw new ConflictError(`namespace ${namespace} exists and does not belong to project ${obj.metadata.name}`, {
            reason: Reason.NamespaceConflict,
            hint: 'choose another spec.namespace or delete the namespace',
          });
        }
        await this.client.apply(
          Kinds.Namespace,
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: {
              name: namespace,
              labels: { [Labels.project]: obj.metadata.name, [Labels.managedBy]: 'santokit' },
              ownerReferences: [{ apiVersion: API_VERSION, kind: 'Project', name: obj.metadata.name, uid: obj.metadata.uid!, controller: true, blockOwnerDeletion: true }],
            },
          },
          { fieldManager: FIELD_MANAGER, force: true },
        );
        status.namespace = namespace;
        status.conditions = markReady(status.conditions, Reason.NamespaceCreated, `namespace ${namespace} is ready`, generation);
      },
    });
  }
}
