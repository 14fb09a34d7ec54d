import os from 'node:os';
import { loadConfig, type ConfigOf, type ConfigSources, type ConfigSpec } from '../core/config.ts';

/** Everything the operator process can be told, from flags or environment variables. */
export const operatorConfigSpec = {
  kubeconfig: { type: 'string', flag: 'kubeconfig', env: 'KUBECONFIG', description: 'kubeconfig file (in-cluster or default locations when unset)' },
  context: { type: 'string', flag: 'context', env: 'SANTOKIT_KUBE_CONTEXT', description: 'kubeconfig context' },
  namespace: {
    type: 'string',
    flag: 'namespace',
    env: 'SANTOKIT_NAMESPACE',
    default: 'santokit-system',
    description: 'namespace of the operator: leader lease, sealing key',
    schema: { pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
  },
  bindAddress: { type: 'string', flag: 'bind-address', env: 'SANTOKIT_BIND_ADDRESS', default: '0.0.0.0', description: 'address of the probe, metrics and data-plane servers' },
  healthPort: { type: 'integer', flag: 'health-port', env: 'SANTOKIT_HEALTH_PORT', default: 8081, description: 'port of /healthz, /readyz and /metrics (0: any free port)', schema: { minimum: 0, maximum: 65535 } },
  bridgePort: { type: 'integer', flag: 'port', env: 'SANTOKIT_BRIDGE_PORT', default: 8080, description: 'port of the data plane (bridge only)', schema: { minimum: 0, maximum: 65535 } },
  leaderElect: { type: 'boolean', flag: 'leader-elect', env: 'SANTOKIT_LEADER_ELECT', default: true, description: 'campaign for the leader lease; only the leader reconciles' },
  leaseName: { type: 'string', flag: 'lease-name', env: 'SANTOKIT_LEASE_NAME', default: 'santokit-operator', description: 'name of the leader Lease' },
  leaseDurationSeconds: { type: 'integer', flag: 'lease-duration', env: 'SANTOKIT_LEASE_DURATION', default: 15, description: 'seconds a lease is valid', schema: { minimum: 2, maximum: 300 } },
  renewDeadlineSeconds: { type: 'integer', flag: 'renew-deadline', env: 'SANTOKIT_RENEW_DEADLINE', default: 10, description: 'seconds the leader keeps trying to renew', schema: { minimum: 1, maximum: 300 } },
  retryPeriodSeconds: { type: 'integer', flag: 'retry-period', env: 'SANTOKIT_RETRY_PERIOD', default: 2, description: 'seconds between election attempts', schema: { minimum: 1, maximum: 60 } },
  identity: { type: 'string', flag: 'identity', env: 'SANTOKIT_IDENTITY', default: `${os.hostname()}_${process.pid}`, description: 'identity in the leader lease' },
  driftIntervalSeconds: { type: 'integer', flag: 'drift-interval', env: 'SANTOKIT_DRIFT_INTERVAL', default: 300, description: "seconds between drift checks of each environment's databases", schema: { minimum: 5, maximum: 86400 } },
  probeIntervalSeconds: { type: 'integer', flag: 'probe-interval', env: 'SANTOKIT_PROBE_INTERVAL', default: 60, description: 'seconds between reachability probes of each Connection', schema: { minimum: 5, maximum: 3600 } },
  digitaloceanApiUrl: {
    type: 'string',
    flag: 'digitalocean-api-url',
    env: 'SANTOKIT_DIGITALOCEAN_API_URL',
    default: 'https://api.digitalocean.com',
    description: 'base URL of the DigitalOcean API (tests point it at a simulator)',
    schema: { pattern: '^https?://' },
  },
  githubApiUrl: {
    type: 'string',
    flag: 'github-api-url',
    env: 'SANTOKIT_GITHUB_API_URL',
    default: 'https://api.github.com',
    description: 'base URL of the GitHub REST API for commit statuses (GitHub Enterprise: https://<host>/api/v3; tests point it at a stand-in)',
    schema: { pattern: '^https?://' },
  },
  sshPort: {
    type: 'integer',
    flag: 'ssh-port',
    env: 'SANTOKIT_SSH_PORT',
    default: 22,
    description: 'port the operator connects to when bootstrapping hosts over SSH (DigitalOcean images: 22)',
    schema: { minimum: 1, maximum: 65535 },
  },
  sshUser: {
    type: 'string',
    flag: 'ssh-user',
    env: 'SANTOKIT_SSH_USER',
    default: 'root',
    description: 'user the operator logs in as when bootstrapping hosts (DigitalOcean installs keys for root)',
    schema: { pattern: '^[a-z_][a-z0-9_-]*$', maxLength: 32 },
  },
  sshReadyTimeoutSeconds: {
    type: 'integer',
    flag: 'ssh-ready-timeout',
    env: 'SANTOKIT_SSH_READY_TIMEOUT',
    default: 300,
    description: 'seconds a new host may take to accept SSH and finish cloud-init before bootstrap reports ssh_failed',
    schema: { minimum: 1, maximum: 3600 },
  },
  logLevel: {
    type: 'string',
    flag: 'log-level',
    env: 'LOG_LEVEL',
    default: 'info',
    description: 'log level',
    schema: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
  shutdownTimeoutSeconds: { type: 'integer', flag: 'shutdown-timeout', env: 'SANTOKIT_SHUTDOWN_TIMEOUT', default: 30, description: 'deadline for graceful shutdown', schema: { minimum: 1, maximum: 600 } },
  apiKeyMaxStalenessSeconds: {
    type: 'integer',
    flag: 'api-key-max-staleness',
    env: 'SANTOKIT_API_KEY_MAX_STALENESS',
    default: 30,
    description: 'data plane: seconds the API-key watch of a project namespace may fail before its keys are refused (a revocation could be missed)',
    schema: { minimum: 1, maximum: 3600 },
  },
  dataPlaneServiceAccount: {
    type: 'string',
    flag: 'data-plane-service-account',
    env: 'SANTOKIT_DATA_PLANE_SERVICE_ACCOUNT',
    default: '',
    description: "<namespace>/<name> of the data plane's ServiceAccount, bound in each project namespace to --data-plane-cluster-role (empty: none)",
    schema: { pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$' },
  },
  dataPlaneClusterRole: {
    type: 'string',
    flag: 'data-plane-cluster-role',
    env: 'SANTOKIT_DATA_PLANE_CLUSTER_ROLE',
    default: '',
    description: "ClusterRole giving the data plane its rights inside one project namespace (API keys, credentials), bound per project",
  },
  operatorServiceAccount: {
    type: 'string',
    flag: 'operator-service-account',
    env: 'SANTOKIT_OPERATOR_SERVICE_ACCOUNT',
    default: '',
    description: "<namespace>/<name> of the operator's own ServiceAccount, bound in each project namespace to --operator-cluster-role (empty: none)",
    schema: { pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$' },
  },
  operatorClusterRole: {
    type: 'string',
    flag: 'operator-cluster-role',
    env: 'SANTOKIT_OPERATOR_CLUSTER_ROLE',
    default: '',
    description: 'ClusterRole giving the operator its Secret rights inside one project namespace, bound per project',
  },
  resyncSeconds: { type: 'integer', flag: 'resync', env: 'SANTOKIT_RESYNC', default: 300, description: 'seconds between full re-checks of every object', schema: { minimum: 5, maximum: 86400 } },
} as const satisfies ConfigSpec;

export type OperatorConfig = ConfigOf<typeof operatorConfigSpec>;

export function loadOperatorConfig(sources: ConfigSources): OperatorConfig {
  return loadConfig(operatorConfigSpec, sources);
}
