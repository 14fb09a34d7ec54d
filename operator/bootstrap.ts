import { makeSealingKeyPair, sealingKeyId } from '../core/sealing.ts';
import type { Logger } from 'pino';
import { Kinds } from '../core/api/resources.ts';
import { isAlreadyExists, type KubeClient, type KubeObject } from '../core/kube/client.ts';
import { FIELD_MANAGER } from './runtime/skeleton.ts';

export const SEALING_SECRET = 'santokit-sealing-key';
export const SEALING_CONFIGMAP = 'santokit-sealing-cert';

const namespacedKinds = ['environments', 'connections', 'releases', 'infrahosts'];

/**
 * The project ClusterRoles. Bound with a RoleBinding in a project namespace they grant rights in
 * that project only: Kubernetes namespace RBAC is project RBAC.
 */
export const projectClusterRoles: Array<{ name: string; rules: object[] }> = [
  {
    name: 'santokit-project-admin',
    rules: [
      { apiGroups: ['santokit.io'], resources: namespacedKinds, verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
      { apiGroups: ['santokit.io'], resources: namespacedKinds.map((k) => `${k}/status`), verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
      // a large Release's content is in chunk ConfigMaps (core/release/content.ts)
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
    ],
  },
  {
    name: 'santokit-project-deployer',
    rules: [
      { apiGroups: ['santokit.io'], resources: namespacedKinds, verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['santokit.io'], resources: ['releases'], verbs: ['create'] },
      { apiGroups: ['santokit.io'], resources: ['environments', 'connections', 'infrahosts'], verbs: ['create', 'update', 'patch'] },
      // `stk apply` of a large release creates its chunk ConfigMaps first, then makes them owned by the Release
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['get', 'list', 'watch'] },
    ],
  },
  {
    name: 'santokit-project-viewer',
    rules: [
      { apiGroups: ['santokit.io'], resources: namespacedKinds, verbs: ['get', 'list', 'watch'] },
      // `stk release show` of a large release reads its chunk ConfigMaps
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['events'], verbs: ['get', 'list', 'watch'] },
    ],
  },
];

/**
 * First-run bootstrap, idempotent and safe to race between replicas: the operator namespace, the
 * sealing key pair (a Secret; its certificate published in a ConfigMap that any user can read)
 * and the project ClusterRoles.
 */
export async function bootstrapOperator(client: KubeClient, namespace: string, log: Logger): Promise<void> {
  await ensureNamespace(client, namespace);
  const certPem = await ensureSealingKey(client, namespace, log);
  await writeSealingCertificate(client, namespace, certPem);
  await publishSealingCertificate(client, namespace);
  for (const role of projectClusterRoles) {
    await client.apply(
      Kinds.ClusterRole,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: role.name, labels: { 'app.kubernetes.io/managed-by': 'santokit' } },
        rules: role.rules,
      },
      { fieldManager: FIELD_MANAGER, force: true },
    );
  }
  log.info({ namespace }, 'bootstrap complete');
}

/** The certificate `stk` seals with (and its key id), in a ConfigMap anyone signed in may read. */
export async function writeSealingCertificate(client: KubeClient, namespace: string, certPem: string): Promise<void> {
  await client.apply(
    Kinds.ConfigMap,
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: SEALING_CONFIGMAP, namespace, labels: { 'app.kubernetes.io/managed-by': 'santokit' } },
      data: { 'tls.crt': certPem, keyId: sealingKeyId(certPem) },
    },
    { fieldManager: FIELD_MANAGER, force: true },
  );
}

/** Every authenticated user may read the sealing certificate: `stk connections set` seals with it. */
async function publishSealingCertificate(client: KubeClient, namespace: string): Promise<void> {
  const name = 'santokit-sealing-cert-reader';
  const labels = { 'app.kubernetes.io/managed-by': 'santokit' };
  await client.apply(
    Kinds.Role,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace, labels },
      rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [SEALING_CONFIGMAP], verbs: ['get'] }],
    },
    { fieldManager: FIELD_MANAGER, force: true },
  );
  await client.apply(
    Kinds.RoleBinding,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
    },
    { fieldManager: FIELD_MANAGER, force: true },
  );
}

async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  if (await client.find(Kinds.Namespace, name)) return;
  try {
    await client.create(Kinds.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

/** Returns the sealing certificate, creating the key pair on first run (the first writer wins). */
async function ensureSealingKey(client: KubeClient, namespace: string, log: Logger): Promise<string> {
  const existing = await client.find<SecretObject>(Kinds.Secret, SEALING_SECRET, namespace);
  if (existing?.data?.['tls.crt']) return Buffer.from(existing.data['tls.crt'], 'base64').toString('utf8');
  const { keyPem, certPem } = makeSealingKeyPair();
  try {
    await client.create(Kinds.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: SEALING_SECRET, namespace, labels: { 'app.kubernetes.io/managed-by': 'santokit' } },
      data: { 'tls.key': Buffer.from(keyPem).toString('base64'), 'tls.crt': Buffer.from(certPem).toString('base64') },
    });
    log.info('created the sealing key pair');
    return certPem;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const winner = await client.get<SecretObject>(Kinds.Secret, SEALING_SECRET, namespace);
    return Buffer.from(winner.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
  }
}
