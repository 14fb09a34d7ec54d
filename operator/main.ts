#!/usr/bin/env node
import { Command } from 'commander';
import { asSantokitError, isSantokitError, ValidationError } from '../core/errors.ts';
import { KubeClient } from '../core/kube/client.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { bootstrapOperator } from './bootstrap.ts';
import { runBridge } from './bridge/main.ts';
import { loadOperatorConfig, operatorConfigSpec, type OperatorConfig } from './config.ts';
import { Databases } from './databases.ts';
import { ConnectionReconciler } from './reconcilers/connection.ts';
import { EnvironmentReconciler } from './reconcilers/environment.ts';
import { ReleaseReconciler } from './reconcilers/release.ts';
import { CommitStatusReporter } from './github/commit-status.ts';
import { ReleasePipeline, type TestPausePoint } from './pipeline.ts';
import { connectionsOnRetiredKeys, dropRetiredSealingKeys, rotateSealingKey } from './sealing-keys.ts';
import { SecretWatch } from './infra/secret-watch.ts';
import { InfraHostReconciler } from './reconcilers/infrahost.ts';
import { ProjectReconciler, projectGrantsOf } from './reconcilers/project.ts';
import { EventRecorder } from './runtime/events.ts';
import { Manager } from './runtime/manager.ts';
import { Kinds, type Connection, type Environment, type InfraHost, type Project } from '../core/api/resources.ts';
import type { KubeObject } from '../core/kube/client.ts';

/** `santokit-operator`: the controller manager; `santokit-operator bridge`: the data plane. */
function main(argv: string[]): void {
  const program = new Command('santokit-operator')
    .description('Santokit operator: reconciles Projects, Environments, Connections, Releases and InfraHosts')
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 1));
  addConfigOptions(program).action(async (opts: Record<string, string | undefined>) => {
    const config = configOrExit(opts);
    process.exitCode = await runManager(config);
  });
  addConfigOptions(program.command('bridge').description('run the data plane (POST /call)')).action(async (_opts: Record<string, string | undefined>, cmd: Command) => {
    // The root command declares the same options and parses them wherever they appear: merge both.
    const config = configOrExit(cmd.optsWithGlobals<Record<string, string | undefined>>());
    process.exitCode = await runBridge(config);
  });
  const sealingKey = program.command('sealing-key').description('the key pair `stk` seals connection URLs with (run with an admin kubeconfig)');
  addConfigOptions(sealingKey.command('rotate').description('make a new key pair current; the previous key keeps opening existing values until they are sealed again')).action(
    async (_opts: Record<string, string | undefined>, cmd: Command) => {
      process.exitCode = await runSealingKeyCommand(configOrExit(cmd.optsWithGlobals<Record<string, string | undefined>>()), 'rotate');
    },
  );
  addConfigOptions(sealingKey.command('drop-retired').description('forget retired keys; refused while any Connection is still sealed for one')).action(
    async (_opts: Record<string, string | undefined>, cmd: Command) => {
      process.exitCode = await runSealingKeyCommand(configOrExit(cmd.optsWithGlobals<Record<string, string | undefined>>()), 'drop-retired');
    },
  );
  void program.parseAsync(argv);
}

/** `santokit-operator sealing-key rotate|drop-retired`: one step of a key rotation, then exit. */
async function runSealingKeyCommand(config: OperatorConfig, action: 'rotate' | 'drop-retired'): Promise<number> {
  const log = createLogger('santokit-operator', config.logLevel);
  try {
    const client = await KubeClient.load({ ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}), ...(config.context ? { context: config.context } : {}) });
    if (action === 'rotate') {
      const r = await rotateSealingKey(client, config.namespace, log);
      process.stdout.write(`sealing key rotated: current ${r.currentKeyId}, previous ${r.previousKeyId} retired (still opens existing values)\n`);
      const stale = await connectionsOnRetiredKeys(client, config.namespace);
      process.stdout.write(`${stale.length} connection(s) to seal again with \`stk connections rotate\`${stale.length ? `: ${stale.map((s) => s.connection).join(', ')}` : ''}\n`);
    } else {
      const dropped = await dropRetiredSealingKeys(client, config.namespace, log);
      process.stdout.write(dropped.length ? `dropped retired key(s) ${dropped.join(', ')}\n` : 'no retired keys\n');
    }
    return 0;
  } catch (err) {
    const e = asSantokitError(err);
    process.stderr.write(`santokit-operator: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    return e.exitCode;
  }
}

function addConfigOptions(cmd: Command): Command {
  for (const field of Object.values(operatorConfigSpec)) {
    if ('flag' in field) cmd.option(`--${field.flag} <value>`, `${field.description}${'env' in field ? ` [env ${field.env}]` : ''}`);
  }
  return cmd;
}

function configOrExit(opts: Record<string, string | undefined>): OperatorConfig {
  const flags: Record<string, string | undefined> = {};
  for (const field of Object.values(operatorConfigSpec)) {
    if ('flag' in field) flags[field.flag] = opts[camel(field.flag)];
  }
  try {
    return loadOperatorConfig({ env: process.env, flags });
  } catch (err) {
    if (err instanceof ValidationError) {
      process.stderr.write(`santokit-operator: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

async function runManager(config: OperatorConfig): Promise<number> {
  const log = createLogger('santokit-operator', config.logLevel);
  let client: KubeClient;
  try {
    client = await KubeClient.load({ ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}), ...(config.context ? { context: config.context } : {}) });
  } catch (err) {
    // No kubeconfig (or one that cannot be read) can never start working: say so and exit at once.
    // An API server that is not up yet is different: the bootstrap below waits for it.
    const e = asSantokitError(err);
    process.stderr.write(`santokit-operator: ${e.message}\nhint: ${e.hint ?? 'pass --kubeconfig <file> or set KUBECONFIG'}\n`);
    return e.exitCode || 1;
  }
  const abort = new AbortController();
  const onSignal = (signal: string) => {
    log.info({ signal }, 'signal received');
    abort.abort();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));

  if (!(await bootstrapWithRetry(client, config, log, abort.signal))) return 0;

  const manager = new Manager({
    client,
    log,
    probeAddress: { host: config.bindAddress, port: config.healthPort },
    leaderElection: config.leaderElect
      ? {
          namespace: config.namespace,
          name: config.leaseName,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationSeconds * 1000,
          renewDeadlineMs: config.renewDeadlineSeconds * 1000,
          retryPeriodMs: config.retryPeriodSeconds * 1000,
        }
      : undefined,
    shutdownTimeoutMs: config.shutdownTimeoutSeconds * 1000,
    resyncMs: config.resyncSeconds * 1000,
    // Releases are the one kind that grows without bound (one per apply) and carries a large spec:
    // the release and environment controllers only map their keys; the pipeline GETs the one it applies.
    metadataOnly: [Kinds.Release],
  });
  const events = new EventRecorder(client, 'santokit-operator', log);
  manager.addController(new ProjectReconciler(client, events, projectGrantsOf(config)));
  const environments = manager.informer<Environment & KubeObject>(Kinds.Environment);
  const databases = new Databases(client, config.namespace, log.child({ component: 'databases' }));
  manager.onShutdown('database pools', () => databases.close());
  const pipeline = new ReleasePipeline(client, databases, events, { testPauseAt: config.testPauseAt as TestPausePoint | undefined });
  manager.addController(new EnvironmentReconciler(client, events, pipeline, config.driftIntervalSeconds * 1000), { watches: [EnvironmentReconciler.watchProjects(environments), EnvironmentReconciler.watchReleases(environments)], concurrency: 4 });
  const commitStatuses = new CommitStatusReporter({ baseUrl: config.githubApiUrl, log: log.child({ component: 'github' }) });
  manager.addController(new ReleaseReconciler(client, events, environments, commitStatuses), { watches: [ReleaseReconciler.watchEnvironments()] });

  const connections = manager.informer<Connection & KubeObject>(Kinds.Connection);
  manager.addController(new ConnectionReconciler(client, events, databases, config.probeIntervalSeconds * 1000, config.connectionCleanupTimeoutSeconds * 1000), { watches: [ConnectionReconciler.watchEnvironments(connections)] });
  const infraHosts = new InfraHostReconciler(client, events, {
    digitaloceanApiUrl: config.digitaloceanApiUrl,
    ssh: { port: config.sshPort, user: config.sshUser, readyTimeoutMs: config.sshReadyTimeoutSeconds * 1000 },
  });
  const infraHostController = manager.addController(infraHosts);
  // Fixing a Secret an InfraHost names (config_invalid) reconciles that host at once.
  const secretWatch = new SecretWatch(client, manager.informer<Project & KubeObject>(Kinds.Project), log.child({ component: 'infrahost-secrets' }), () => manager.informer<InfraHost & KubeObject>(Kinds.InfraHost).list(), (key) =>
    infraHostController.enqueue(key),
  );
  manager.onShutdown('infrahost secret watch', async () => secretWatch.stop());
  // Bootstraps in flight are aborted (their SSH sessions closed): the next leader starts them again.
  manager.onShutdown('bootstrap jobs', async () => infraHosts.stopBootstraps());

  abort.signal.addEventListener('abort', () => void manager.shutdown(0));
  await manager.start();
  secretWatch.start();
  log.info({ probePort: manager.probePort, identity: config.identity, leaderElection: config.leaderElect }, 'operator started');
  return manager.done;
}

/** The API server may not be up yet: retry the first-run bootstrap with backoff until it works or we are told to stop. */
async function bootstrapWithRetry(client: KubeClient, config: OperatorConfig, log: Logger, signal: AbortSignal): Promise<boolean> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await bootstrapOperator(client, config.namespace, log);
      return true;
    } catch (err) {
      if (isSantokitError(err) && !err.retryable) throw err;
      const delay = Math.min(10_000, 250 * 2 ** attempt);
      log.warn({ err, retryInMs: delay }, 'bootstrap failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  return false;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

main(process.argv);
