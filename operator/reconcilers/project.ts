import { markReady, Reason } from '../../core/api/conditions.ts';
import { API_VERSION, Kinds, Labels, projectNamespace, type Project, type ProjectStatus } from '../../core/api/resources.ts';
import { ConflictError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { ReconcileContext, ReconcileRequest, Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { FIELD_MANAGER, reconcileWithStatus } from '../runtime/skeleton.ts';

/** A ServiceAccount bound in every project namespace to a ClusterRole (its rights there only). */
export interface ProjectGrant {
  /** the RoleBinding's name in each project namespace */
  readonly bindingName: string;
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  readonly clusterRole: string;
}

/** The RoleBinding names the operator writes in project namespaces (the chart lets it write only these). */
export const ProjectBindingNames = { dataPlane: 'santokit-data-plane', operator: 'santokit-operator' } as const;

/**
 * The grants from `--data-plane-service-account`/`--data-plane-cluster-role` and
 * `--operator-service-account`/`--operator-cluster-role`; a pair left empty grants nothing (a
 * local run with an admin kubeconfig needs none).
 */
export function projectGrantsOf(config: { dataPlaneServiceAccount: string; dataPlaneClusterRole: string; operatorServiceAccount: string; operatorClusterRole: string }): ProjectGrant[] {
  const grants: ProjectGrant[] = [];
  const add = (bindingName: string, account: string, clusterRole: string) => {
    if (!account || !clusterRole) return;
    const [namespace, name] = account.split('/');
    grants.push({ bindingName, serviceAccount: { namespace: namespace!, name: name! }, clusterRole });
  };
  add(ProjectBindingNames.dataPlane, config.dataPlaneServiceAccount, config.dataPlaneClusterRole);
  add(ProjectBindingNames.operator, config.operatorServiceAccount, config.operatorClusterRole);
  return grants;
}

/**
 * Creates and labels the project's namespace, owned by the Project: deleting the Project lets
 * the garbage collector delete the namespace and everything in it. Databases are never touched.
 *
 * In that namespace it binds the data plane's and its own ServiceAccount to their per-project
 * ClusterRoles (`grants`): Secret rights exist only in project namespaces, never cluster-wide.
 * The operator may create these RoleBindings because it holds `bind` on exactly those
 * ClusterRoles, not the rights they grant.
 */
export class ProjectReconciler implements Reconciler {
  readonly name = 'project';
  readonly kind = Kinds.Project;

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly grants: readonly ProjectGrant[] = [],
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
        for (const grant of this.grants) await this.bind(namespace, obj.metadata.name, grant);
        status.namespace = namespace;
        status.conditions = markReady(status.conditions, Reason.NamespaceCreated, `namespace ${namespace} is ready`, generation);
      },
    });
  }

  /** Applies one grant's RoleBinding; a binding to another ClusterRole (a reinstall under another release name) is replaced, since roleRef cannot change. */
  private async bind(namespace: string, project: string, grant: ProjectGrant): Promise<void> {
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: grant.bindingName, namespace, labels: { [Labels.project]: project, [Labels.managedBy]: 'santokit' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: grant.clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: grant.serviceAccount.name, namespace: grant.serviceAccount.namespace }],
    };
    const existing = await this.client.find<KubeObject & { roleRef?: { name?: string } }>(Kinds.RoleBinding, grant.bindingName, namespace);
    if (existing && existing.roleRef?.name !== grant.clusterRole) await this.client.delete(Kinds.RoleBinding, grant.bindingName, namespace);
    await this.client.apply(Kinds.RoleBinding, binding, { fieldManager: FIELD_MANAGER, force: true });
  }
}
