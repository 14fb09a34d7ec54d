import { createHash } from 'node:crypto';
import { markReconciling, setCondition } from '../../core/api/conditions.ts';
import { Kinds, type InfraHost, type InfraHostStatus } from '../../core/api/resources.ts';
import { isSantokitError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { ANNOTATION_RECONCILE_REQUEST, ANNOTATION_RESIZE, ANNOTATION_RUN, ANNOTATION_SSH_KEY, currentRun, formatRun, parseRun, runAction, type RunRecord } from '../../core/infra/run.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { BootstrapStep, JOB_POLL_MS, showStage } from '../infra/bootstrap-step.ts';
import { DigitalOceanProvider } from '../infra/digitalocean.ts';
import type { ExternalEvent, ManagedHost } from '../infra/external.ts';
import { describeRef, generatedKeySecretName, loadHostConfig, resolveProviderKey, secretValue, type HostConfig } from '../infra/host-config.ts';
import { HostClient } from '../infra/host-client.ts';
import { cloudErrorOutcome, finalizeManaged, InfraHostCondition, InfraHostReason, isCloudError, reconcileManaged } from '../infra/managed.ts';
import { ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING, ANNOTATION_PROVIDER_ID, parseCreateFailure } from '../infra/plan.ts';
import { KubeRecordStore } from '../infra/record-store.ts';
import { parseResize } from '../infra/resize.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from '../runtime/controller.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { reconcileWithStatus, type ReconcileScope } from '../runtime/skeleton.ts';

/**
 * The InfraHost reconciler: one cloud host (a DigitalOcean droplet) per resource, bootstrapped
 * over SSH. A pass reads as the managed-resource loop it runs:
 *
 * 1. configuration from Secrets (operator/infra/host-config.ts); anything missing is
 *    `config_invalid`: recorded, terminal, and no cloud API call is made;
 * 2. the managed loop (operator/infra/managed.ts) with the host's external client
 *    (operator/infra/host-client.ts): observe, then create / adopt / wait / block, then update
 *    in place; it owns the create-pending marker, the conditions and the requeue timing;
 * 3. bootstrap (operator/infra/bootstrap-step.ts), driven by the observed host once it is ready.
 *
 * Deletion (finalizer `santokit.io/infrahost`) is the same loop's `finalizeManaged`: `Orphan`
 * leaves the droplet; `Delete` deletes by id and releases the finalizer only once the provider
 * answers 404 for it. Errors while finalizing never become terminal.
 *
 * Secrets (token, private key, auth key) are read per pass, held in memory only, and appear in
 * no log line, event, status field or error message.
 */

export const INFRAHOST_FINALIZER = 'santokit.io/infrahost';
export { generatedKeySecretName, InfraHostCondition, InfraHostReason };

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

type Obj = InfraHost & KubeObject;
type Scope = ReconcileScope<InfraHost, InfraHostStatus>;

/** What one pass learned that must be written after the status (see core/infra/run.ts). */
interface Pass {
  run?: RunRecord;
  /** the run annotation as last read or written */
  recordedRun?: string;
  /** the run has an answer for whoever asked (ready, failed, or needs a person) */
  settled?: boolean;
}

export class InfraHostReconciler implements Reconciler {
  readonly name = 'infrahost';
  readonly kind = Kinds.InfraHost;
  readonly #bootstrap: BootstrapStep;
  /** one provider per token (its SSH-key cache and rate-limit pause outlive a pass) */
  readonly #providers = new Map<string, DigitalOceanProvider>();
  /** the last provider per token Secret, so a finalizer can still delete when the Secret went first */
  readonly #lastProviderByRef = new Map<string, DigitalOceanProvider>();

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly options: InfraHostReconcilerOptions,
  ) {
    this.#bootstrap = new BootstrapStep({ ...(options.ssh === undefined ? {} : { ssh: options.ssh }), ...(options.bootstrapRetryMs === undefined ? {} : { retryMs: options.bootstrapRetryMs }) });
  }

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
        gone: async () => this.#bootstrap.forget(request.key),
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
    this.#bootstrap.stopAll();
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

  async #work(scope: Scope, key: string, pass: Pass): Promise<ReconcileResult | void> {
    const { obj, status, generation, context } = scope;
    const o = obj as Obj;
    const annotations = o.metadata.annotations ?? {};
    pass.recordedRun = annotations[ANNOTATION_RUN];
    const recorded = parseRun(pass.recordedRun);
    const run = currentRun(recorded, annotations[ANNOTATION_RECONCILE_REQUEST], generation);
    pass.run = run;
    const newRun = recorded === undefined || recorded.request !== run.request || recorded.generation !== run.generation;
    if (newRun) this.#bootstrap.newRun(key);

    // A bootstrap job is running for what this status already describes: just look again soon.
    const running = this.#bootstrap.running(key);
    if (!newRun && running !== undefined && status.observedGeneration === generation) {
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
      config = await loadHostConfig(this.client, o);
    } catch (err) {
      if (err instanceof ValidationError) this.#recordConfigInvalid(scope, err.message);
      throw err;
    }
    if (status.steps?.config !== undefined) {
      const { config: _cleared, ...rest } = status.steps;
      status.steps = rest;
    }

    const provider = this.#provider(o, config.token, context.log);
    const record = (e: ExternalEvent) => this.events.record(this.kind, o, e.type, e.reason, e.message);
    try {
      const sshKey = await resolveProviderKey(provider, config);
      if (sshKey.registered === true) await record({ type: 'Normal', reason: 'SshKeyRegistered', message: `registered the generated SSH key as "${config.sshKeyName}" (${sshKey.fingerprint})` });

      // 2. The managed loop: observe, create / adopt / wait / block, update in place.
      const outcome = await reconcileManaged({
        mr: managedHostOf(o, status),
        key: sshKey,
        client: new HostClient(provider),
        store: new KubeRecordStore(this.client, o, (text) => {
          pass.recordedRun = text;
        }),
        status,
        generation,
        run,
        record,
      });
      if (outcome.kind === 'requeue') {
        if (outcome.settled) pass.settled = true;
        return { requeueAfterMs: outcome.requeueAfterMs };
      }

      // 3. Bootstrap, once per run, driven by the observed host.
      const bootstrapped = this.#bootstrap.run({ key, spec: o.spec, host: outcome.host, config, run, status, generation, log: context.log });
      if (bootstrapped.settled) pass.settled = true;
      return bootstrapped.requeueAfterMs === undefined ? undefined : { requeueAfterMs: bootstrapped.requeueAfterMs };
    } catch (err) {
      const requeue = cloudErrorOutcome(err, status, generation, (message) => this.#recordConfigInvalid(scope, message));
      if (requeue !== undefined) {
        pass.settled = true;
        return requeue;
      }
      throw err;
    } finally {
      status.action = runAction(run);
    }
  }

  #recordConfigInvalid(scope: Scope, message: string): void {
    const { status, generation } = scope;
    status.phase = 'Failed';
    status.steps = { ...(status.steps ?? {}), config: 'config_invalid' };
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: InfraHostReason.ConfigInvalid, message }, generation);
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

  async #finalize(scope: Scope, key: string): Promise<ReconcileResult | undefined> {
    const { obj, status, generation } = scope;
    const o = obj as Obj;
    this.#bootstrap.forget(key);
    const policy = o.spec.deletionPolicy ?? 'Delete';
    return finalizeManaged({
      mr: managedHostOf(o, status),
      policy,
      client: async () => {
        const token = await secretValue(this.client, o.metadata.namespace ?? '', o.spec.credentialsSecretRef);
        const provider = token === undefined ? this.#lastProviderByRef.get(refKey(o)) : this.#provider(o, token.trim(), scope.context.log);
        return provider === undefined ? undefined : new HostClient(provider);
      },
      status,
      generation,
      record: (e) => this.events.record(this.kind, o, e.type, e.reason, e.message),
      credentialsHint: `cannot delete the droplet: the token Secret ${describeRef(o.spec.credentialsSecretRef)} is missing; restore it, or set deletionPolicy: Orphan to leave the droplet`,
      onError: (err) => scope.context.log.warn({ err }, 'finalizing the host failed; retrying'),
    });
  }
}

// ---------------------------------------------------------------------------------------------

/** The managed loop's view of an InfraHost: its spec and what earlier passes recorded. */
function managedHostOf(o: Obj, status: InfraHostStatus): ManagedHost {
  const s = o.spec;
  const annotations = o.metadata.annotations ?? {};
  const recordedId = nonEmpty(annotations[ANNOTATION_PROVIDER_ID]) ?? nonEmpty(status.providerId);
  const createPendingSince = nonEmpty(annotations[ANNOTATION_CREATE_PENDING]);
  const createFailure = parseCreateFailure(annotations[ANNOTATION_CREATE_FAILED]);
  const recordedSshKey = annotations[ANNOTATION_SSH_KEY];
  return {
    uid: o.metadata.uid ?? '',
    spec: { project: s.project, environment: s.environment, host: s.host, region: s.region, size: s.size, image: s.image, tags: s.tags ?? [] },
    ...(s.adopt === undefined ? {} : { adopt: s.adopt }),
    ...(recordedId === undefined ? {} : { recordedId }),
    ...(createPendingSince === undefined ? {} : { createPendingSince }),
    ...(createFailure === undefined ? {} : { createFailure }),
    ...(recordedSshKey === undefined ? {} : { recordedSshKey }),
    resize: parseResize(annotations[ANNOTATION_RESIZE]),
  };
}

/** An error ends a run (the CLI gets its answer) when it is the user's to fix or the cloud's fault. */
function settlesRun(err: unknown): boolean {
  return isCloudError(err) || (isSantokitError(err) && !err.retryable);
}

function refKey(o: Obj): string {
  return `${o.metadata.namespace ?? ''}/${o.spec.credentialsSecretRef.name}/${o.spec.credentialsSecretRef.key}`;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
