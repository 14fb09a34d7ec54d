import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { API_KEY_SELECTOR } from '../../core/apikeys.ts';
import { Kinds, type Connection, type Environment, type Project, type Release } from '../../core/api/resources.ts';
import { KubeClient, type KubeObject } from '../../core/kube/client.ts';
import { Informer } from '../../core/kube/informer.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import type { OperatorConfig } from '../config.ts';
import { DATA_PLANE_CREDENTIAL_SELECTOR } from '../data-plane-role.ts';
import { ServingCatalog } from './catalog.ts';
import { ApiKeyAuthenticator, defaultAuthenticatorOptions } from './keys.ts';
import { BridgeMetrics } from './metrics.ts';
import { ConnectionPools, defaultPoolOptions, type PoolOptions } from './pools.ts';
import { defaultLimits, type BridgeLimits } from './limits.ts';
import { ProjectSecrets } from './project-secrets.ts';
import { createBridgeHandler, createProbeHandler } from './server.ts';

/**
 * `santokit-operator bridge`: the data plane. Runs on every replica (no leader election): informers
 * of Environments, Releases, Connections and Projects, and per project namespace of API-key and
 * data-plane credential Secrets, keep what it serves current; one HTTP server answers `POST /call`
 * (and `/healthz`) on `--port`, another `/healthz`, `/readyz` and `/metrics` on `--health-port`,
 * which is never exposed (they name every tenant's environments, releases and connections).
 *
 * Kubernetes access (for the Helm chart's RBAC): list/watch projects, environments, releases,
 * connections (santokit.io) cluster-wide; in each project namespace only (a RoleBinding the
 * operator creates with the Project), list/watch Secrets labelled santokit.io/api-key=true and
 * santokit.io/data-plane-credential=true, and patch the former (lastUsedAt annotation). No
 * sealing key, no owner URL: it connects with the data-plane role the operator creates.
 */

export interface BridgeOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly host: string;
  readonly port: number;
  /** port of /healthz, /readyz and /metrics */
  readonly probePort: number;
  readonly resyncMs: number;
  readonly shutdownTimeoutMs: number;
  readonly pool?: PoolOptions;
  readonly limits?: BridgeLimits;
  readonly keys?: { readonly maxConcurrentVerifications: number; readonly maxQueuedVerifications: number };
  /** how long a namespace's API-key watch may fail before its keys are refused (fail closed) */
  readonly apiKeyMaxStalenessMs?: number;
}

type Env = Environment & KubeObject;
type Rel = Release & KubeObject;
type Conn = Connection & KubeObject;

export class Bridge {
  private readonly informers: Informer[];
  private readonly projectSecrets: ProjectSecrets[];
  private readonly pools: ConnectionPools;
  private readonly catalog: ServingCatalog;
  private readonly keys: ApiKeyAuthenticator;
  private readonly server: http.Server;
  private readonly probeServer: http.Server;
  private readonly environments: Informer<Env>;
  private stopping: Promise<number> | undefined;

  constructor(private readonly options: BridgeOptions) {
    const { client, log } = options;
    const informer = <T extends KubeObject>(kind: (typeof Kinds)[keyof typeof Kinds], labelSelector?: string) => {
      const inf = new Informer<T>(client, kind, log.child({ informer: kind.plural }), { resyncMs: options.resyncMs, ...(labelSelector ? { labelSelector } : {}) });
      inf.on('error', (err: unknown) => log.debug({ err, kind: kind.kind }, 'watch interrupted; resuming'));
      return inf;
    };
    this.environments = informer<Env>(Kinds.Environment);
    const releases = informer<Rel>(Kinds.Release);
    const connections = informer<Conn>(Kinds.Connection);
    const projects = informer<Project & KubeObject>(Kinds.Project);
    this.informers = [this.environments, releases, connections, projects] as Informer[];
    const projectSecrets = (what: string, labelSelector: string) => new ProjectSecrets(client, projects, log.child({ secrets: what }), { labelSelector, resyncMs: options.resyncMs });
    const apiKeySecrets = projectSecrets('api-keys', API_KEY_SELECTOR);
    const credentials = projectSecrets('credentials', DATA_PLANE_CREDENTIAL_SELECTOR);
    this.projectSecrets = [apiKeySecrets, credentials];

    this.pools = new ConnectionPools((namespace, name) => credentials.get(namespace, name), log.child({ component: 'pools' }), options.pool ?? defaultPoolOptions);
    this.catalog = new ServingCatalog(this.environments, releases, connections, this.pools, log.child({ component: 'catalog' }), client);
    this.keys = new ApiKeyAuthenticator(apiKeySecrets, client, log.child({ component: 'apikeys' }), {
      ...defaultAuthenticatorOptions,
      maxQueuedVerifications: 32,
      ...options.keys,
      ...(options.apiKeyMaxStalenessMs === undefined ? {} : { maxStalenessMs: options.apiKeyMaxStalenessMs }),
    });
    const metrics = new BridgeMetrics(() => this.catalog.servedCount);

    const handler = createBridgeHandler({
      authenticate: (presented) => this.keys.authenticate(presented),
      resolve: (namespace, environment) => this.catalog.resolve(namespace, environment),
      projectOf: (namespace, environment) => this.catalog.environment(namespace, environment)?.spec.project,
      pool: (serving, connection) => this.catalog.pool(serving, connection),
      metrics,
      log: log.child({ component: 'call' }),
      limits: options.limits ?? defaultLimits,
    });
    this.server = http.createServer(handler);
    // Slow clients: headers within 10 s, the whole request within 30 s (the body has its own,
    // shorter deadline once the call is accepted).
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.probeServer = http.createServer(createProbeHandler({ notReady: () => this.notReady(), metrics }));
  }

  /** Reasons not to send traffic here; empty when every served environment is loaded. */
  notReady(): string[] {
    if (this.stopping) return ['shutting down'];
    const why = this.catalog.readiness();
    if (!this.keys.synced) why.push('API keys are not loaded yet');
    if (!this.projectSecrets[1]!.synced) why.push('data-plane credentials are not loaded yet');
    return why;
  }

  /** Listens and starts the watches; resolves once the port is bound. */
  async start(): Promise<void> {
    const listen = (server: http.Server, port: number) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, this.options.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    await listen(this.probeServer, this.options.probePort);
    await listen(this.server, this.options.port);
    for (const s of this.projectSecrets) s.start();
    for (const inf of this.informers) inf.start();
  }

  /** The bound port of POST /call (useful when configured as 0). */
  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** The bound port of /healthz, /readyz and /metrics. */
  get probePort(): number {
    return (this.probeServer.address() as AddressInfo | null)?.port ?? 0;
  }

  /**
   * Graceful shutdown within the deadline: report not ready, stop accepting connections and let
   * in-flight calls finish, stop the watches, close the pools. Resolves with the exit code
   * (1 when the deadline passed).
   */
  shutdown(): Promise<number> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<number> {
    const { log } = this.options;
    log.info('shutting down');
    const work = (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      await closed;
      for (const inf of this.informers) inf.stop();
      for (const s of this.projectSecrets) s.stop();
      this.catalog.stop();
      await this.pools.close(5);
      this.probeServer.close();
      this.probeServer.closeAllConnections();
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.options.shutdownTimeoutMs)));
    const outcome = await Promise.race([work.then(() => 'ok' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      log.error({ timeoutMs: this.options.shutdownTimeoutMs }, 'shutdown deadline passed; dropping open connections');
      this.server.closeAllConnections();
      this.probeServer.close();
      this.probeServer.closeAllConnections();
      for (const inf of this.informers) inf.stop();
      for (const s of this.projectSecrets) s.stop();
      this.catalog.stop();
      void this.pools.close(0);
      return 1;
    }
    log.info('stopped');
    return 0;
  }
}

/** Runs the data plane until SIGTERM or SIGINT; resolves with the process exit code. */
export async function runBridge(config: OperatorConfig): Promise<number> {
  const log = createLogger('santokit-bridge', config.logLevel);
  const client = await KubeClient.load({ ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}), ...(config.context ? { context: config.context } : {}) });
  const bridge = new Bridge({
    client,
    log,
    host: config.bindAddress,
    port: config.bridgePort,
    probePort: config.healthPort,
    resyncMs: config.resyncSeconds * 1000,
    shutdownTimeoutMs: config.shutdownTimeoutSeconds * 1000,
    pool: { ...defaultPoolOptions, statementTimeoutMs: config.bridgeStatementTimeoutMs },
    limits: {
      maxBodyBytes: config.bridgeMaxBodyBytes,
      bodyTimeoutMs: config.bridgeBodyTimeoutSeconds * 1000,
      maxResponseBytes: config.bridgeMaxResponseBytes,
      maxInFlight: config.bridgeMaxInFlight,
      keyRatePerSecond: config.bridgeKeyRate,
      keyBurst: config.bridgeKeyBurst,
    },
    keys: { maxConcurrentVerifications: 2, maxQueuedVerifications: config.bridgeMaxQueuedVerifications },
    apiKeyMaxStalenessMs: config.apiKeyMaxStalenessSeconds * 1000,
  });
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: string) => {
      log.info({ signal }, 'signal received');
      void bridge.shutdown().then(resolve);
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  await bridge.start();
  log.info({ port: bridge.port, probePort: bridge.probePort, host: config.bindAddress }, 'data plane started');
  return stopped;
}
