import { createHash } from 'node:crypto';
import { markReady, markReconciling, markRetrying, markStalled, setCondition } from '../../core/api/conditions.ts';
import { API_VERSION, Kinds, type InfraHost, type InfraHostStatus, type SecretKeyRef } from '../../core/api/resources.ts';
import { InternalError, isSantokitError, NotFoundError, SantokitError, ValidationError } from '../../core/errors.ts';
import { isAlreadyExists, type KubeClient, type KubeObject } from '../../core/kube/client.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { redactSecrets } from '../../core/redact.ts';
import { bootstrapHost, stepCodes, type BootstrapFailureCode, type BootstrapResult, type StepName } from '../infra/bootstrap.ts';
import { DigitalOceanProvider } from '../infra/digitalocean.ts';
import {
  CloudConflictError,
  CloudCredentialsError,
  CloudNotFoundError,
  CloudRateLimitedError,
  CloudRequestRejectedError,
  CloudUnavailableError,
} from '../infra/errors.ts';
import { dropletName, ownershipTag } from '../../core/infra/hosts.ts';
import { BootstrapJobs } from '../infra/jobs.ts';
import {
  ANNOTATION_CREATE_PENDING,
  ANNOTATION_PROVIDER_ID,
  assessHost,
  decideDeletion,
  decideProvisioning,
  type DriftItem,
  type HostSpec,
  type ProvisionDecision,
  type ResizeState,
} from '../infra/plan.ts';
import type { CloudHost, CloudProvider, HostAction as ProviderAction } from '../infra/provider.ts';
import {
  ANNOTATION_RECONCILE_REQUEST,
  ANNOTATION_RESIZE,
  ANNOTATION_RUN,
  ANNOTATION_SSH_KEY,
  currentRun,
  formatRun,
  parseRun,
  runAction,
  type RunRecord,
} from '../../core/infra/run.ts';
import { generateSshKeyPair } from '../infra/ssh.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus, type ReconcileScope } from '../runtime/skeleton.ts';

/**
 * The InfraHost reconciler: one cloud host (a DigitalOcean droplet) per resource, bootstrapped
 * over SSH. The decisions live in operator/infra/plan.ts (pure); this file does the I/O they ask
 * for and records the outcome. A pass:
 *
 * 1. configuration: the token Secret, the SSH key (a named provider key with its private half in
 *    a Secret, or a generated pair kept in the Secret `infrahost-<name>-ssh`, owned by the
 *    resource) and the Tailscale auth key Secret. Anything missing is `config_invalid`: recorded,
 *    terminal, and no cloud API call is made.
 * 2. provisioning: list by ownership tag, then create / adopt / wait / block as decided. The
 *    create-pending annotation is written (with a resourceVersion precondition) before the create
 *    call, the droplet id after it. A create that failed with a 4xx or a 429 created nothing, so
 *    its marker is cleared; after a 5xx or a lost answer it stays and the ownership tag decides.
 * 3. the host: active with a public IPv4, else requeue (never a blocking wait); drift reported
 *    (`Drifted`), tags added and size reconciled in place as plan.ts decides.
 * 4. bootstrap, once per run (see core/infra/run.ts), as a background job the next passes
 *    collect: SSH readiness with a deadline, Docker, Tailscale. A failed bootstrap is retried
 *    after `bootstrapRetryMs`, and at once by the next `stk infra up`.
 *
 * Deletion (finalizer `santokit.io/infrahost`): `Orphan` leaves the droplet; `Delete` deletes by
 * id and releases the finalizer only once the provider answers 404 for it. Errors while
 * finalizing never become terminal: the finalizer keeps trying and says why in `Ready`.
 *
 * Secrets (token, private key, auth key) are read per pass, held in memory only, and appear in
 * no log line, event, status field or error message: errors come from the provider and
 * bootstrap layers, which build their messages from operation names and scrub them.
 */

export const INFRAHOST_FINALIZER = 'santokit.io/infrahost';

export interface InfraHostReconcilerOptions {
  /** base URL of the DigitalOcean API */
  readonly digitaloceanApiUrl: string;
  /** how hosts are reached over SSH; defaults match DigitalOcean images (port 22, root) */
  readonly ssh?: {
    readonly port?: number;
    readonly user?: string;
    /** how long a host may take to accept SSH and finish cloud-init; default 5 minutes */
    readonly readyTimeoutMs?: number;
  };
  /** after a failed bootstrap, try again this much later (same run); default 5 minutes */
  readonly bootstrapRetryMs?: number;
}

/** Condition types of an InfraHost besides Ready / Reconciling / Stalled. */
export const InfraHostCondition = {
  Provisioned: 'Provisioned',
  SSHReady: 'SSHReady',
  Bootstrapped: 'Bootstrapped',
  Drifted: 'Drifted',
} as const;

/** Named reasons of the InfraHost conditions. */
export const InfraHostReason = {
  ConfigInvalid: 'ConfigInvalid',
  HostActive: 'HostActive',
  CreatePending: 'CreatePending',
  Bootstrapping: 'Bootstrapping',
  Bootstrapped: 'Bootstrapped',
  HostReady: 'HostReady',
  SSHReady: 'SSHReady',
  SSHFailed: 'SSHFailed',
  NotChecked: 'NotChecked',
  NoDrift: 'NoDrift',
  DriftReported: 'DriftReported',
  DriftReconciling: 'DriftReconciling',
  Deleting: 'Deleting',
  CredentialsMissing: 'CredentialsMissing',
} as const;

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
const JOB_POLL_MS = 2_000;
const stageLabel = { ssh: 'waiting for SSH and cloud-init', docker: 'installing Docker', network: 'joining the tailnet' } as const;
/** A host that needs a person (duplicates, powered off) is looked at again this often. */
const BLOCKED_RECHECK_MS = 60_000;

type Obj = InfraHost & KubeObject;
type Scope = ReconcileScope<InfraHost, InfraHostStatus>;

/** What one pass learned that must be written after the status (see run.ts). */
interface Pass {
  run?: RunRecord;
  /** the run annotation as read at the start of the pass */
  recordedRun?: string;
  /** the run has an answer for whoever asked (ready, failed, or needs a person) */
  settled?: boolean;
}

interface HostConfig {
  readonly token: string;
  readonly privateKey: string;
  /** the provider key's name */
  readonly sshKeyName: string;
  /** set for generated keys: registered at the provider when missing */
  readonly publicKey?: string;
  readonly tailscaleAuthKey?: string;
}

export class InfraHostReconciler implements Reconciler {
  readonly name = 'infrahost';
  readonly kind = Kinds.InfraHost;
  readonly #jobs = new BootstrapJobs();
  readonly #retryAt = new Map<string, number>();
  /** one provider per token (its SSH-key cache outlives a pass: that endpoint allows 10 lists a minute) */
  readonly #providers = new Map<string, DigitalOceanProvider>();
  /** the last provider per token Secret, so a finalizer can still delete when the Secret went first */
  readonly #lastProviderByRef = new Map<string, DigitalOceanProvider>();

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly options: InfraHostReconcilerOptions,
  ) {}

  async reconcile(request: ReconcileRequest, context: ReconcileContext): Promise<ReconcileResult | void> {
    const pass: Pass = {};
    let result: ReconcileResult | void;
    try {
      result = await reconcileWithStatus<InfraHost, InfraHostStatus>({
        client: this.client,
        events: this.events,
        kind: this.kind,
        request,
        context,
        finalizer: INFRAHOST_FINALIZER,
        finalize: (scope) => this.#finalize(scope, request.key),
        gone: async () => {
          this.#jobs.cancel(request.key);
          this.#retryAt.delete(request.key);
        },
        work: (scope) => this.#work(scope, request.key, pass),
      });
    } catch (err) {
      if (settlesRun(err)) pass.settled = true;
      await this.#writeRun(request, pass).catch((e: unknown) => context.log.warn({ err: e }, 'could not record the run'));
      throw err;
    }
    await this.#writeRun(request, pass);
    return result;
  }

  /** Aborts every bootstrap in flight (operator shutdown): bootstrap detects before it changes, so the next run resumes safely. */
  stopBootstraps(): void {
    this.#jobs.cancelAll();
  }

  /** Writes the run record after the status, with `handled` once the run has settled. */
  async #writeRun(request: ReconcileRequest, pass: Pass): Promise<void> {
    if (pass.run === undefined) return;
    const run: RunRecord = pass.settled === true ? { ...pass.run, handled: true } : pass.run;
    const text = formatRun(run);
    if (text === pass.recordedRun) return;
    try {
      await this.client.patch(this.kind, request.name, request.namespace, { metadata: { annotations: { [ANNOTATION_RUN]: text } } });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  // -------------------------------------------------------------------------------------------

  async #work(scope: Scope, key: string, pass: Pass): Promise<ReconcileResult | void> {
    const { obj, status, generation, context } = scope;
    const o = obj as Obj;
    const annotations = o.metadata.annotations ?? {};
    pass.recordedRun = annotations[ANNOTATION_RUN];
    const recorded = parseRun(pass.recordedRun);
    const run = currentRun(recorded, annotations[ANNOTATION_RECONCILE_REQUEST], generation);
    pass.run = run;
    const newRun = recorded === undefined || recorded.request !== run.request || recorded.generation !== run.generation;
    if (newRun) this.#retryAt.delete(key);

    // A bootstrap job is running for what this status already describes: just look again soon.
    const running = this.#jobs.get(key);
    if (!newRun && running !== undefined && running.result === undefined && running.error === undefined && status.observedGeneration === generation) {
      showStage(status, running.stage);
      return { requeueAfterMs: JOB_POLL_MS };
    }

    status.action = runAction(run);
    status.phase ??= 'Pending';
    if (status.conditions?.some((c) => c.type === 'Ready') !== true) {
      status.conditions = markReconciling(status.conditions, 'Progressing', 'reconciling the host', generation);
    }
    for (const type of [InfraHostCondition.Provisioned, InfraHostCondition.SSHReady, InfraHostCondition.Bootstrapped]) {
      if (status.conditions?.some((c) => c.type === type) !== true) {
        status.conditions = setCondition(status.conditions, { type, status: 'Unknown', reason: InfraHostReason.NotChecked, message: 'not checked yet' }, generation);
      }
    }

    // 1. Configuration: everything from Secrets, before any cloud API call.
    let config: HostConfig;
    try {
      config = await this.#loadConfig(o);
    } catch (err) {
      if (err instanceof ValidationError) this.#recordConfigInvalid(scope, err.message);
      throw err;
    }
    if (status.steps?.config !== undefined) {
      const { config: _cleared, ...rest } = status.steps;
      status.steps = rest;
    }

    const provider = this.#provider(o, config.token, context.log);
    try {
      return await this.#reconcileHost(scope, key, pass, run, provider, config);
    } catch (err) {
      if (err instanceof CloudRateLimitedError) {
        const message = redactSecrets(err.message);
        status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: status.providerId === undefined ? 'False' : 'Unknown', reason: err.reason, message }, generation);
        status.conditions = markRetrying(status.conditions, err.reason, message, generation);
        pass.settled = true;
        return { requeueAfterMs: Math.max(1_000, err.retryAfterMs) };
      }
      if (err instanceof ValidationError || err instanceof CloudCredentialsError) {
        // Input the user must fix: a key that is not registered, a slug DigitalOcean refuses, a rejected token.
        this.#recordConfigInvalid(scope, redactSecrets(err.message));
      } else if (isCloudError(err)) {
        status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: err.reason, message: redactSecrets(err.message) }, generation);
        status.phase = 'Failed';
      }
      throw err;
    } finally {
      status.action = runAction(run);
    }
  }

  async #reconcileHost(scope: Scope, key: string, pass: Pass, run: RunRecord, provider: CloudProvider, config: HostConfig): Promise<ReconcileResult | void> {
    const { obj, status, generation } = scope;
    const o = obj as Obj;
    const uid = o.metadata.uid ?? '';
    const spec = hostSpecOf(o);
    const annotations = o.metadata.annotations ?? {};

    const sshKey = await this.#providerKey(o, provider, config);
    if (sshKey === undefined) {
      throw configInvalid(`no SSH key named "${config.sshKeyName}" is registered at DigitalOcean`, 'register the public key under that name, or use sshKey: { generate: true }');
    }

    // 2. Provisioning: find our host by its ownership tag, else create it (guarded).
    const recordedId = nonEmpty(annotations[ANNOTATION_PROVIDER_ID]) ?? nonEmpty(status.providerId);
    const createPendingSince = nonEmpty(annotations[ANNOTATION_CREATE_PENDING]);
    const input = {
      spec,
      uid,
      sshKeyIds: [sshKey.id],
      owned: await provider.listHostsByTag(ownershipTag(uid)),
      now: Date.now(),
      ...(recordedId === undefined ? {} : { recordedId }),
      ...(createPendingSince === undefined ? {} : { createPendingSince }),
    };
    let decision: ProvisionDecision = decideProvisioning(input);
    if (decision.kind === 'lookupRecorded') decision = decideProvisioning({ ...input, recordedLookup: (await provider.getHost(decision.id)) ?? null });

    let host: CloudHost;
    switch (decision.kind) {
      case 'create': {
        // The marker goes first, guarded by the resourceVersion we read: if anything changed
        // since (another pass recorded an id), this fails and the next pass reads again.
        const marked = await this.client.patch<Obj>(this.kind, o.metadata.name, o.metadata.namespace, {
          metadata: { resourceVersion: o.metadata.resourceVersion, annotations: { [ANNOTATION_CREATE_PENDING]: isoNow() } },
        });
        try {
          host = await provider.createHost(decision.request);
        } catch (err) {
          if (err instanceof CloudRequestRejectedError || err instanceof CloudCredentialsError || err instanceof CloudRateLimitedError || err instanceof CloudConflictError) {
            // The provider refused before doing anything: no droplet exists, the marker may go.
            await this.client.patch(this.kind, o.metadata.name, o.metadata.namespace, { metadata: { annotations: { [ANNOTATION_CREATE_PENDING]: null } } });
          }
          throw err;
        }
        run.created = true;
        await this.client.patch(this.kind, marked.metadata.name, marked.metadata.namespace, {
          metadata: {
            annotations: { [ANNOTATION_PROVIDER_ID]: host.id, [ANNOTATION_CREATE_PENDING]: null, [ANNOTATION_SSH_KEY]: sshKey.fingerprint, [ANNOTATION_RUN]: formatRun(run) },
          },
        });
        pass.recordedRun = formatRun(run);
        await this.events.record(this.kind, o, 'Normal', 'HostCreated', `created droplet ${host.id} (${host.name})`);
        break;
      }
      case 'adopt': {
        host = decision.host;
        if (decision.record) {
          // A marker means the create was ours (a crash came between the call and the record).
          if (createPendingSince !== undefined) run.created = true;
          await this.client.patch(this.kind, o.metadata.name, o.metadata.namespace, {
            metadata: {
              annotations: {
                [ANNOTATION_PROVIDER_ID]: host.id,
                [ANNOTATION_CREATE_PENDING]: null,
                ...(annotations[ANNOTATION_SSH_KEY] === undefined ? { [ANNOTATION_SSH_KEY]: sshKey.fingerprint } : {}),
                [ANNOTATION_RUN]: formatRun(run),
              },
            },
          });
          pass.recordedRun = formatRun(run);
          await this.events.record(this.kind, o, 'Normal', 'HostAdopted', `found droplet ${host.id} (${host.name}) by its ownership tag and recorded it`);
        }
        break;
      }
      case 'waitForCreate':
        status.phase = 'Provisioning';
        status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'Unknown', reason: InfraHostReason.CreatePending, message: decision.message }, generation);
        status.conditions = markReconciling(status.conditions, InfraHostReason.CreatePending, decision.message, generation);
        return { requeueAfterMs: decision.requeueAfterMs };
      case 'blocked': {
        const message = `${decision.message}; ${decision.hint}`;
        status.phase = 'Failed';
        status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: decision.reason, message }, generation);
        status.conditions = markStalled(status.conditions, decision.reason, message, generation);
        pass.settled = true;
        return { requeueAfterMs: BLOCKED_RECHECK_MS };
      }
      case 'lookupRecorded':
        throw new InternalError('the recorded host was looked up and still needs a lookup');
    }

    if (status.providerId !== undefined && status.providerId !== host.id) {
      // Another machine: the host key recorded for the old one says nothing about it.
      delete status.hostKeyFingerprint;
      delete status.steps;
    }
    status.providerId = host.id;
    if (host.publicIPv4 === undefined) delete status.publicIPv4;
    else status.publicIPv4 = host.publicIPv4;

    // 3. The host: drift, tags, an in-place resize, readiness.
    const resizeRecord = parseResize(annotations[ANNOTATION_RESIZE]);
    const action = resizeRecord.actionId === undefined ? undefined : await provider.getAction(resizeRecord.actionId);
    const resize: ResizeState = {
      inProgress: resizeRecord.inProgress,
      ...(action === undefined ? {} : { action }),
      ...(resizeRecord.failedSize === undefined ? {} : { failedSize: resizeRecord.failedSize }),
    };
    const recordedSshKey = annotations[ANNOTATION_SSH_KEY];
    const assessment = assessHost({ spec, uid, host, resize, desiredSshKey: sshKey.fingerprint, ...(recordedSshKey === undefined ? {} : { recordedSshKey }) });
    await this.#recordDrift(scope, o, assessment.drift);
    if (assessment.tagsToAdd.length > 0) {
      await provider.tagHost(host.id, assessment.tagsToAdd);
      run.reconciled = true;
    }
    const nextResize = await this.#resizeStep(provider, host, assessment.resize, resize, o, run);
    if (formatResize(nextResize) !== formatResize(resizeRecord)) {
      await this.client.patch(this.kind, o.metadata.name, o.metadata.namespace, { metadata: { annotations: { [ANNOTATION_RESIZE]: formatResize(nextResize) } } });
    }

    if (!assessment.ready) {
      const notReady: { reason: string; message: string; requeueAfterMs?: number } = assessment.notReady ?? { reason: 'HostNotReady', message: `host ${host.id} is not ready`, requeueAfterMs: 10_000 };
      status.phase = 'Provisioning';
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: notReady.reason, message: notReady.message }, generation);
      if (notReady.requeueAfterMs === undefined) {
        // Powered off or archived by someone else: a person decides; look again now and then.
        status.phase = 'Failed';
        status.conditions = markRetrying(status.conditions, notReady.reason, notReady.message, generation);
        pass.settled = true;
        return { requeueAfterMs: BLOCKED_RECHECK_MS };
      }
      status.conditions = markReconciling(status.conditions, notReady.reason, notReady.message, generation);
      return { requeueAfterMs: notReady.requeueAfterMs };
    }
    const address = host.publicIPv4 ?? '';
    status.conditions = setCondition(
      status.conditions,
      { type: InfraHostCondition.Provisioned, status: 'True', reason: InfraHostReason.HostActive, message: `droplet ${host.id} is active at ${address}` },
      generation,
    );

    // 4. Bootstrap, once per run, as a background job.
    return this.#bootstrap(scope, key, pass, run, host, config);
  }

  async #bootstrap(scope: Scope, key: string, pass: Pass, run: RunRecord, host: CloudHost, config: HostConfig): Promise<ReconcileResult | void> {
    const { obj, status, generation, context } = scope;
    const o = obj as Obj;
    const spec = o.spec;
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
    if (finished !== undefined) return this.#recordBootstrap(scope, key, pass, run, host, finished.result, finished.error);

    const retryAt = this.#retryAt.get(key);
    const due = run.bootstrap === undefined || (run.bootstrap === 'failed' && (retryAt === undefined || Date.now() >= retryAt));
    if (!due) {
      pass.settled = true;
      if (run.bootstrap === 'ok') {
        status.phase = 'Ready';
        status.conditions = markReady(status.conditions, InfraHostReason.HostReady, readyMessage(host, status.steps), generation);
        return;
      }
      return { requeueAfterMs: Math.max(1_000, (retryAt ?? Date.now()) - Date.now()) };
    }

    const current = this.#jobs.get(key);
    if (current === undefined || current.identity !== identity) {
      const expectedHostKey = nonEmpty(status.hostKeyFingerprint);
      const ssh = this.options.ssh ?? {};
      const log = context.log.child({ component: 'bootstrap', providerId: host.id });
      this.#jobs.start(key, identity, (signal, onStage) =>
        bootstrapHost({
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
    if (status.conditions?.find((c) => c.type === 'Ready')?.status === 'True') {
      // A re-check of a ready host (a new run): it stays Ready while Docker and Tailscale are verified.
      status.conditions = setCondition(status.conditions, { type: 'Reconciling', status: 'True', reason: InfraHostReason.Bootstrapping, message }, generation);
    } else {
      status.conditions = markReconciling(status.conditions, InfraHostReason.Bootstrapping, message, generation);
    }
    return { requeueAfterMs: JOB_POLL_MS };
  }

  #recordBootstrap(scope: Scope, key: string, pass: Pass, run: RunRecord, host: CloudHost, result: BootstrapResult | undefined, error: unknown): ReconcileResult | void {
    const { status, generation } = scope;
    scope.context.log.info({ ok: result?.ok, steps: result === undefined ? undefined : stepCodes(result) }, 'bootstrap finished');
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
    pass.settled = true;

    if (result.ok) {
      run.bootstrap = 'ok';
      this.#retryAt.delete(key);
      const summary = readyMessage(host, status.steps);
      status.phase = 'Ready';
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Bootstrapped, status: 'True', reason: InfraHostReason.Bootstrapped, message: summary }, generation);
      status.conditions = markReady(status.conditions, InfraHostReason.HostReady, summary, generation);
      return;
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
      return;
    }
    const retryMs = this.options.bootstrapRetryMs ?? 5 * 60_000;
    this.#retryAt.set(key, Date.now() + retryMs);
    status.conditions = markRetrying(status.conditions, reason, message, generation);
    return { requeueAfterMs: retryMs };
  }

  /** Runs the next step of an in-place resize and returns the state to keep (see plan.ts). */
  async #resizeStep(provider: CloudProvider, host: CloudHost, step: ReturnType<typeof assessHost>['resize'], state: ResizeState, o: Obj, run: RunRecord): Promise<ResizeRecord> {
    const keep = (inProgress: boolean, action?: ProviderAction): ResizeRecord => ({
      inProgress,
      ...(action === undefined ? {} : { actionId: action.id }),
      ...(state.failedSize === undefined ? {} : { failedSize: state.failedSize }),
    });
    switch (step.kind) {
      case 'shutdown':
        run.reconciled = true;
        await this.events.record(this.kind, o, 'Normal', 'Resizing', `shutting down droplet ${host.id} to resize it to ${o.spec.size}`);
        return keep(true, await provider.shutdownHost(host.id));
      case 'powerOff':
        run.reconciled = true;
        return keep(true, await provider.powerOffHost(host.id));
      case 'resize':
        run.reconciled = true;
        try {
          return keep(true, await provider.resizeHost(host.id, step.size));
        } catch (err) {
          if (!(err instanceof CloudRequestRejectedError)) throw err;
          await this.events.record(this.kind, o, 'Warning', 'ResizeRefused', redactSecrets(err.message));
          return { inProgress: true, failedSize: step.size };
        }
      case 'failed':
        await this.events.record(this.kind, o, 'Warning', 'ResizeRefused', step.message);
        return { inProgress: true, failedSize: step.size };
      case 'powerOn':
        run.reconciled = true;
        return keep(true, await provider.powerOnHost(host.id));
      case 'none':
        return host.status === 'active' ? { inProgress: false, ...(state.failedSize === undefined ? {} : { failedSize: state.failedSize }) } : keep(state.inProgress, state.action);
      case 'wait':
        return keep(state.inProgress, state.action);
    }
  }

  async #recordDrift(scope: Scope, o: Obj, drift: readonly DriftItem[]): Promise<void> {
    const { status, generation } = scope;
    const before = status.conditions?.find((c) => c.type === InfraHostCondition.Drifted);
    if (drift.length === 0) {
      delete status.drift;
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Drifted, status: 'False', reason: InfraHostReason.NoDrift, message: 'the host matches its spec' }, generation);
      return;
    }
    status.drift = drift.map((d) => d.message);
    const needsPerson = drift.some((d) => d.remedy !== 'inPlace');
    const reason = needsPerson ? InfraHostReason.DriftReported : InfraHostReason.DriftReconciling;
    const message = status.drift.join('; ');
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Drifted, status: 'True', reason, message }, generation);
    if (before?.status !== 'True' || before.message !== message) await this.events.record(this.kind, o, needsPerson ? 'Warning' : 'Normal', reason, message);
  }

  #recordConfigInvalid(scope: Scope, message: string): void {
    const { status, generation } = scope;
    status.phase = 'Failed';
    status.steps = { ...(status.steps ?? {}), config: 'config_invalid' };
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: InfraHostReason.ConfigInvalid, message }, generation);
  }

  // -------------------------------------------------------------------------------------------

  /** Reads every Secret the host needs; a missing one is a ValidationError naming it (never its value). */
  async #loadConfig(o: Obj): Promise<HostConfig> {
    const namespace = o.metadata.namespace ?? '';
    const spec = o.spec;
    if (spec.provider !== 'digitalocean') throw configInvalid(`provider "${String(spec.provider)}" is not supported`);
    const token = await this.#secretValue(namespace, spec.credentialsSecretRef);
    if (token === undefined) {
      throw configInvalid(`the DigitalOcean token Secret ${describeRef(spec.credentialsSecretRef)} is missing in namespace ${namespace}`, 'create it: kubectl create secret generic <name> --from-literal=<key>=<token>');
    }

    let privateKey: string;
    let sshKeyName: string;
    let publicKey: string | undefined;
    if (spec.sshKey.generate === true) {
      const pair = await this.#generatedKey(o);
      privateKey = pair.privateKey;
      publicKey = pair.publicKey;
      sshKeyName = dropletName(spec.project, spec.environment, spec.host);
    } else {
      const ref = spec.sshKey.privateKeySecretRef;
      if (spec.sshKey.name === undefined || ref === undefined) throw configInvalid('sshKey needs name and privateKeySecretRef, or generate: true');
      const value = await this.#secretValue(namespace, ref);
      if (value === undefined) throw configInvalid(`the SSH private key Secret ${describeRef(ref)} is missing in namespace ${namespace}`);
      privateKey = value;
      sshKeyName = spec.sshKey.name;
    }

    let tailscaleAuthKey: string | undefined;
    const ts = spec.bootstrap?.tailscale;
    if (ts !== undefined) {
      tailscaleAuthKey = await this.#secretValue(namespace, ts.authKeySecretRef);
      if (tailscaleAuthKey === undefined) throw configInvalid(`the Tailscale auth key Secret ${describeRef(ts.authKeySecretRef)} is missing in namespace ${namespace}`);
    }
    return { token: token.trim(), privateKey, sshKeyName, ...(publicKey === undefined ? {} : { publicKey }), ...(tailscaleAuthKey === undefined ? {} : { tailscaleAuthKey: tailscaleAuthKey.trim() }) };
  }

  async #secretValue(namespace: string, ref: SecretKeyRef): Promise<string | undefined> {
    const secret = await this.client.find<KubeObject & { data?: Record<string, string> }>(Kinds.Secret, ref.name, namespace);
    const raw = secret?.data?.[ref.key];
    if (raw === undefined) return undefined;
    const value = Buffer.from(raw, 'base64').toString('utf8');
    return value.trim() === '' ? undefined : value;
  }

  /**
   * The generated key pair of a host, kept in the Secret `infrahost-<name>-ssh` (type
   * kubernetes.io/ssh-auth, owned by the InfraHost so it goes with it). Made once.
   */
  async #generatedKey(o: Obj): Promise<{ privateKey: string; publicKey: string }> {
    const namespace = o.metadata.namespace ?? '';
    const name = generatedKeySecretName(o.metadata.name);
    type Secret = KubeObject & { data?: Record<string, string> };
    const read = (s: Secret | undefined) => {
      const priv = s?.data?.['ssh-privatekey'];
      const pub = s?.data?.['ssh-publickey'];
      return priv === undefined || pub === undefined ? undefined : { privateKey: Buffer.from(priv, 'base64').toString('utf8'), publicKey: Buffer.from(pub, 'base64').toString('utf8').trim() };
    };
    const existing = read(await this.client.find<Secret>(Kinds.Secret, name, namespace));
    if (existing !== undefined) return existing;
    const pair = generateSshKeyPair(`santokit ${dropletName(o.spec.project, o.spec.environment, o.spec.host)}`);
    try {
      await this.client.create<Secret>(Kinds.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'santokit' },
          ownerReferences: [{ apiVersion: API_VERSION, kind: 'InfraHost', name: o.metadata.name, uid: o.metadata.uid ?? '', controller: true }],
        },
        type: 'kubernetes.io/ssh-auth',
        data: { 'ssh-privatekey': Buffer.from(pair.privateKey).toString('base64'), 'ssh-publickey': Buffer.from(`${pair.publicKey}\n`).toString('base64') },
      } as Secret);
      return pair;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const raced = read(await this.client.find<Secret>(Kinds.Secret, name, namespace));
      if (raced === undefined) throw configInvalid(`the Secret ${namespace}/${name} exists but holds no ssh-privatekey/ssh-publickey`);
      return raced;
    }
  }

  /** The provider's id and fingerprint of the host's SSH key; registers a generated key when missing. */
  async #providerKey(o: Obj, provider: CloudProvider, config: HostConfig): Promise<{ id: string; fingerprint: string } | undefined> {
    const found = await provider.findSshKeyByName(config.sshKeyName);
    if (config.publicKey === undefined) return found === undefined ? undefined : { id: found.id, fingerprint: found.fingerprint };
    if (found !== undefined) {
      if (keyBlob(found.publicKey) !== keyBlob(config.publicKey)) {
        throw configInvalid(`an SSH key named "${config.sshKeyName}" is registered at DigitalOcean with another public key`, 'rename or delete that key at DigitalOcean; Santokit registers its generated key under the droplet name');
      }
      return { id: found.id, fingerprint: found.fingerprint };
    }
    const created = await provider.createSshKey(config.sshKeyName, config.publicKey);
    await this.events.record(this.kind, o, 'Normal', 'SshKeyRegistered', `registered the generated SSH key as "${config.sshKeyName}" (${created.fingerprint})`);
    return { id: created.id, fingerprint: created.fingerprint };
  }

  #provider(o: Obj, token: string, log: Logger): DigitalOceanProvider {
    const id = digest(`${this.options.digitaloceanApiUrl}\n${token}`);
    let provider = this.#providers.get(id);
    if (provider === undefined) {
      provider = new DigitalOceanProvider({
        token,
        baseUrl: this.options.digitaloceanApiUrl,
        // Providers outlive a reconcile: log without one reconcile's id.
        logger: createLogger('santokit-operator', log.level).child({ controller: this.name }),
      });
      if (this.#providers.size > 100) this.#providers.clear();
      this.#providers.set(id, provider);
    }
    this.#lastProviderByRef.set(refKey(o), provider);
    return provider;
  }

  // -------------------------------------------------------------------------------------------

  async #finalize(scope: Scope, key: string): Promise<ReconcileResult | undefined> {
    const { obj, status, generation } = scope;
    const o = obj as Obj;
    this.#jobs.cancel(key);
    this.#retryAt.delete(key);
    status.phase = 'Deleting';
    const policy = o.spec.deletionPolicy ?? 'Delete';
    if (policy === 'Orphan') {
      await this.events.record(this.kind, o, 'Normal', 'HostOrphaned', `deletionPolicy is Orphan: droplet ${status.providerId ?? '(none recorded)'} is left running`);
      return undefined;
    }
    const annotations = o.metadata.annotations ?? {};
    const uid = o.metadata.uid ?? '';
    const wait = (reason: string, message: string, ms: number, stalled = false): ReconcileResult => {
      status.conditions = stalled ? markStalled(status.conditions, reason, message, generation) : markReconciling(status.conditions, reason, message, generation);
      return { requeueAfterMs: ms };
    };
    try {
      const token = await this.#secretValue(o.metadata.namespace ?? '', o.spec.credentialsSecretRef);
      const provider = token === undefined ? this.#lastProviderByRef.get(refKey(o)) : this.#provider(o, token.trim(), scope.context.log);
      if (provider === undefined) {
        return wait(
          InfraHostReason.CredentialsMissing,
          `cannot delete the droplet: the token Secret ${describeRef(o.spec.credentialsSecretRef)} is missing; restore it, or set deletionPolicy: Orphan to leave the droplet`,
          30_000,
          true,
        );
      }
      const recordedId = nonEmpty(annotations[ANNOTATION_PROVIDER_ID]) ?? nonEmpty(status.providerId);
      const createPendingSince = nonEmpty(annotations[ANNOTATION_CREATE_PENDING]);
      const input = {
        policy,
        uid,
        owned: await provider.listHostsByTag(ownershipTag(uid)),
        now: Date.now(),
        ...(recordedId === undefined ? {} : { recordedId }),
        ...(createPendingSince === undefined ? {} : { createPendingSince }),
      };
      let decision = decideDeletion(input);
      if (decision.kind === 'lookup') decision = decideDeletion({ ...input, lookup: (await provider.getHost(decision.id)) ?? null });
      switch (decision.kind) {
        case 'release':
          await this.events.record(this.kind, o, 'Normal', 'HostDeleted', decision.message);
          return undefined;
        case 'delete': {
          const outcome = await provider.deleteHost(decision.id);
          await this.events.record(this.kind, o, 'Normal', 'HostDeleting', `deleting droplet ${decision.id}${outcome === 'absent' ? ' (already gone)' : ''}; waiting for the provider to confirm`);
          return wait(InfraHostReason.Deleting, `deleting droplet ${decision.id}; waiting for the provider to answer 404`, decision.requeueAfterMs);
        }
        case 'wait':
          return wait(InfraHostReason.Deleting, decision.message, decision.requeueAfterMs);
        case 'blocked':
          return wait(decision.reason, `${decision.message}; ${decision.hint}`, BLOCKED_RECHECK_MS, true);
        case 'lookup':
          throw new InternalError('the host was looked up and still needs a lookup');
      }
    } catch (err) {
      // A finalizer never gives up: say why and try again (a rate limit says when).
      const e = isSantokitError(err) ? err : new InternalError(err instanceof Error ? err.message : String(err));
      const ms = err instanceof CloudRateLimitedError ? Math.max(1_000, err.retryAfterMs) : 15_000;
      scope.context.log.warn({ err: e }, 'finalizing the host failed; retrying');
      return wait(e.reason, redactSecrets(`cannot delete the droplet yet: ${e.message}`), ms);
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface ResizeRecord {
  readonly inProgress: boolean;
  readonly actionId?: string;
  readonly failedSize?: string;
}

function parseResize(text: string | undefined): ResizeRecord {
  if (text === undefined || text === '') return { inProgress: false };
  try {
    const v = JSON.parse(text) as Partial<ResizeRecord> | null;
    return {
      inProgress: v?.inProgress === true,
      ...(typeof v?.actionId === 'string' && /^\d+$/.test(v.actionId) ? { actionId: v.actionId } : {}),
      ...(typeof v?.failedSize === 'string' ? { failedSize: v.failedSize } : {}),
    };
  } catch {
    return { inProgress: false };
  }
}

function formatResize(r: ResizeRecord): string {
  return JSON.stringify({ inProgress: r.inProgress, ...(r.actionId === undefined ? {} : { actionId: r.actionId }), ...(r.failedSize === undefined ? {} : { failedSize: r.failedSize }) });
}

/** The Secret that keeps a generated key pair. */
export function generatedKeySecretName(infraHostName: string): string {
  return `infrahost-${infraHostName}-ssh`;
}

function hostSpecOf(o: Obj): HostSpec {
  const s = o.spec;
  return { project: s.project, environment: s.environment, host: s.host, region: s.region, size: s.size, image: s.image, tags: s.tags ?? [] };
}

/**
 * Where a running bootstrap is, read at each poll: `stk infra up` draws it live. The step results
 * land in `status.steps` when the job ends.
 */
function showStage(status: InfraHostStatus, stage: StepName | undefined): void {
  if (stage === undefined) delete status.bootstrapStage;
  else status.bootstrapStage = stage;
  const sshReady = stage === undefined ? status.conditions?.find((c) => c.type === InfraHostCondition.SSHReady)?.status === 'True' : stage !== 'ssh';
  status.phase = sshReady ? 'Bootstrapping' : 'WaitingForSSH';
}

function readyMessage(host: CloudHost, steps: Record<string, string> | undefined): string {
  return `droplet ${host.id} at ${host.publicIPv4 ?? '-'}: docker ${steps?.docker ?? '-'}, network ${steps?.network ?? '-'}`;
}

function configInvalid(message: string, hint?: string): ValidationError {
  return new ValidationError(message, [], { reason: InfraHostReason.ConfigInvalid, ...(hint === undefined ? {} : { hint }) });
}

function isCloudError(err: unknown): err is SantokitError {
  return (
    err instanceof CloudUnavailableError ||
    err instanceof CloudRateLimitedError ||
    err instanceof CloudCredentialsError ||
    err instanceof CloudRequestRejectedError ||
    err instanceof CloudConflictError ||
    err instanceof CloudNotFoundError
  );
}

/** An error ends a run (the CLI gets its answer) when it is the user's to fix or the cloud's fault. */
function settlesRun(err: unknown): boolean {
  return isCloudError(err) || (isSantokitError(err) && !err.retryable);
}

function describeRef(ref: SecretKeyRef): string {
  return `${ref.name} (key ${ref.key})`;
}

function refKey(o: Obj): string {
  return `${o.metadata.namespace ?? ''}/${o.spec.credentialsSecretRef.name}/${o.spec.credentialsSecretRef.key}`;
}

function keyBlob(publicKey: string): string {
  return publicKey.trim().split(/\s+/)[1] ?? '';
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
