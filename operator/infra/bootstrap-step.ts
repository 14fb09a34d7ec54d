import { createHash } from 'node:crypto';
import { markReady, markRetrying, markStalled, setCondition } from '../../core/api/conditions.ts';
import type { InfraHostSpec, InfraHostStatus } from '../../core/api/resources.ts';
import { InternalError } from '../../core/errors.ts';
import { dropletName } from '../../core/infra/hosts.ts';
import type { RunRecord } from '../../core/infra/run.ts';
import type { Logger } from '../../core/log.ts';
import { redactSecrets } from '../../core/redact.ts';
import { bootstrapHost, stepCodes, type BootstrapFailureCode, type BootstrapOptions, type BootstrapResult, type StepName } from './bootstrap.ts';
import type { HostConfig } from './host-config.ts';
import { BootstrapJobs } from './jobs.ts';
import { InfraHostCondition, InfraHostReason, markReconcilingKeepReady } from './managed.ts';
import type { CloudHost } from './provider.ts';

/**
 * Bootstrap as a step after the managed loop, driven by the observed host: once per run (see
 * core/infra/run.ts), as a background job the next passes collect (SSH readiness with a deadline,
 * Docker, Tailscale). A failed bootstrap is retried after `retryMs`, and at once by the next run.
 */

const FAILURE_REASONS: Record<BootstrapFailureCode, string> = {
  ssh_failed: 'SSHFailed',
  docker_detect_failed: 'DockerDetectFailed',
  docker_install_failed: 'DockerInstallFailed',
  docker_verify_failed: 'DockerVerifyFailed',
  network_install_failed: 'NetworkInstallFailed',
  network_join_failed: 'NetworkJoinFailed',
  config_invalid: 'ConfigInvalid',
};

/** How often a pass looks at a running bootstrap job. */
export const JOB_POLL_MS = 2_000;
const stageLabel = { ssh: 'waiting for SSH and cloud-init', docker: 'installing Docker', network: 'joining the tailnet' } as const;

export interface BootstrapStepOptions {
  readonly ssh?: {
    readonly port?: number;
    readonly user?: string;
    /** how long a host may take to accept SSH and finish cloud-init; default 5 minutes */
    readonly readyTimeoutMs?: number;
  };
  /** after a failed bootstrap, try again this much later (same run); default 5 minutes */
  readonly retryMs?: number;
  /** injectable for tests; default bootstrapHost */
  readonly bootstrap?: (options: BootstrapOptions) => Promise<BootstrapResult>;
}

export interface BootstrapInput {
  /** the InfraHost's key (namespace/name) */
  readonly key: string;
  readonly spec: InfraHostSpec;
  readonly host: CloudHost;
  readonly config: HostConfig;
  readonly run: RunRecord;
  readonly status: InfraHostStatus;
  readonly generation: number | undefined;
  readonly log: Logger;
}

export interface BootstrapOutcome {
  /** look again this much later; undefined: the host is ready, nothing to wait for */
  readonly requeueAfterMs?: number;
  /** the run has its answer */
  readonly settled: boolean;
}

export class BootstrapStep {
  readonly #jobs = new BootstrapJobs();
  readonly #retryAt = new Map<string, number>();

  constructor(private readonly options: BootstrapStepOptions = {}) {}

  /** A job is running for `key` (its stage, for the status), or undefined. */
  running(key: string): { stage: StepName | undefined } | undefined {
    const job = this.#jobs.get(key);
    return job !== undefined && job.result === undefined && job.error === undefined ? { stage: job.stage } : undefined;
  }

  /** A new run starts: a failed bootstrap is due again at once. */
  newRun(key: string): void {
    this.#retryAt.delete(key);
  }

  /** The resource is gone or being deleted. */
  forget(key: string): void {
    this.#jobs.cancel(key);
    this.#retryAt.delete(key);
  }

  /** Aborts every bootstrap in flight (shutdown): bootstrap detects before it changes, so the next run resumes safely. */
  stopAll(): void {
    this.#jobs.cancelAll();
  }

  /** Starts, polls or collects the bootstrap of an observed, ready host. */
  run(input: BootstrapInput): BootstrapOutcome {
    const { key, spec, host, config, run, status, generation } = input;
    const address = host.publicIPv4 ?? '';
    const tailscale = spec.bootstrap?.tailscale;
    const identity = JSON.stringify([
      host.id,
      address,
      spec.bootstrap?.docker?.enabled ?? true,
      tailscale === undefined ? null : [...(tailscale.tags ?? [])].sort(),
      digest(config.privateKey),
      config.tailscaleAuthKey === undefined ? null : digest(config.tailscaleAuthKey),
    ]);

    const finished = this.#jobs.get(key)?.identity === identity ? this.#jobs.take(key) : undefined;
    if (finished !== undefined) return this.#record(input, finished.result, finished.error);

    const retryAt = this.#retryAt.get(key);
    const due = run.bootstrap === undefined || (run.bootstrap === 'failed' && (retryAt === undefined || Date.now() >= retryAt));
    if (!due) {
      if (run.bootstrap === 'ok') {
        status.phase = 'Ready';
        status.conditions = markReady(status.conditions, InfraHostReason.HostReady, readyMessage(host, status.steps), generation);
        return { settled: true };
      }
      return { requeueAfterMs: Math.max(1_000, (retryAt ?? Date.now()) - Date.now()), settled: true };
    }

    const current = this.#jobs.get(key);
    if (current === undefined || current.identity !== identity) {
      const expectedHostKey = status.hostKeyFingerprint === undefined || status.hostKeyFingerprint === '' ? undefined : status.hostKeyFingerprint;
      const ssh = this.options.ssh ?? {};
      const log = input.log.child({ component: 'bootstrap', providerId: host.id });
      const bootstrap = this.options.bootstrap ?? bootstrapHost;
      this.#jobs.start(key, identity, (signal, onStage) =>
        bootstrap({
          target: {
            host: address,
            port: ssh.port ?? 22,
            username: ssh.user ?? 'root',
            privateKey: config.privateKey,
            ...(expectedHostKey === undefined ? {} : { expectedHostKey }),
          },
          docker: { enabled: spec.bootstrap?.docker?.enabled ?? true },
          ...(tailscale === undefined || config.tailscaleAuthKey === undefined
            ? {}
            : { tailscale: { authKey: config.tailscaleAuthKey, tags: tailscale.tags ?? [], hostname: dropletName(spec.project, spec.environment, spec.host) } }),
          readinessTimeoutMs: ssh.readyTimeoutMs ?? 5 * 60_000,
          logger: log,
          signal,
          onStage,
        }),
      );
      log.info({ address }, 'bootstrap started');
    }
    const stage = this.#jobs.get(key)?.stage;
    showStage(status, stage);
    const message = `bootstrapping droplet ${host.id} over SSH at ${address}${stage === undefined ? '' : ` (${stageLabel[stage]})`}`;
    status.conditions = markReconcilingKeepReady(status.conditions, InfraHostReason.Bootstrapping, message, generation);
    return { requeueAfterMs: JOB_POLL_MS, settled: false };
  }

  #record(input: BootstrapInput, result: BootstrapResult | undefined, error: unknown): BootstrapOutcome {
    const { key, host, run, status, generation } = input;
    input.log.info({ ok: result?.ok, steps: result === undefined ? undefined : stepCodes(result) }, 'bootstrap finished');
    if (result === undefined) {
      throw new InternalError(`bootstrap of droplet ${host.id} failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`);
    }
    status.steps = stepCodes(result);
    delete status.bootstrapStage;
    if (status.hostKeyFingerprint === undefined && result.hostKeyFingerprint !== undefined && result.steps[0]?.ok === true) {
      status.hostKeyFingerprint = result.hostKeyFingerprint;
    }
    const ssh = result.steps.find((s) => s.step === 'ssh');
    if (ssh?.ok === true) {
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.SSHReady, status: 'True', reason: InfraHostReason.SSHReady, message: ssh.message ?? 'SSH ready' }, generation);
    } else if (ssh?.code === 'ssh_failed') {
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.SSHReady, status: 'False', reason: InfraHostReason.SSHFailed, message: ssh.message ?? 'SSH failed' }, generation);
    }
    if (result.changed) run.reconciled = true;

    if (result.ok) {
      run.bootstrap = 'ok';
      this.#retryAt.delete(key);
      const summary = readyMessage(host, status.steps);
      status.phase = 'Ready';
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Bootstrapped, status: 'True', reason: InfraHostReason.Bootstrapped, message: summary }, generation);
      status.conditions = markReady(status.conditions, InfraHostReason.HostReady, summary, generation);
      return { settled: true };
    }

    run.bootstrap = 'failed';
    const failure = result.failure ?? { step: 'ssh', code: 'ssh_failed' as const, message: 'bootstrap failed' };
    const reason = FAILURE_REASONS[failure.code];
    const message = redactSecrets(`${failure.code}: ${failure.message}`);
    status.phase = 'Failed';
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Bootstrapped, status: 'False', reason, message }, generation);
    if (failure.code === 'config_invalid') {
      // An unusable key or Tailscale setting: retrying cannot help until the input changes.
      status.conditions = markStalled(status.conditions, reason, message, generation);
      return { settled: true };
    }
    const retryMs = this.options.retryMs ?? 5 * 60_000;
    this.#retryAt.set(key, Date.now() + retryMs);
    status.conditions = markRetrying(status.conditions, reason, message, generation);
    return { requeueAfterMs: retryMs, settled: true };
  }
}

/**
 * Where a running bootstrap is, read at each poll: `stk infra up` draws it live. The step results
 * land in `status.steps` when the job ends.
 */
export function showStage(status: InfraHostStatus, stage: StepName | undefined): void {
  if (stage === undefined) delete status.bootstrapStage;
  else status.bootstrapStage = stage;
  const sshReady = stage === undefined ? status.conditions?.find((c) => c.type === InfraHostCondition.SSHReady)?.status === 'True' : stage !== 'ssh';
  status.phase = sshReady ? 'Bootstrapping' : 'WaitingForSSH';
}

function readyMessage(host: CloudHost, steps: Record<string, string> | undefined): string {
  return `droplet ${host.id} at ${host.publicIPv4 ?? '-'}: docker ${steps?.docker ?? '-'}, network ${steps?.network ?? '-'}`;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
