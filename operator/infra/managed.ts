import { markReconciling, markRetrying, markStalled, setCondition } from '../../core/api/conditions.ts';
import type { InfraHostStatus } from '../../core/api/resources.ts';
import { InternalError, ValidationError } from '../../core/errors.ts';
import type { RunRecord } from '../../core/infra/run.ts';
import { redactSecrets } from '../../core/redact.ts';
import { CloudConflictError, CloudCredentialsError, CloudNotFoundError, CloudRateLimitedError, CloudRequestRejectedError, CloudUnavailableError } from './errors.ts';
import type { ExternalClient, ExternalEvent, ManagedHost, ProviderKey } from './external.ts';
import { createRetryAt, DEFAULT_CONSISTENCY_WINDOW_MS, type CreateFailure, type DriftItem } from './plan.ts';
import type { CloudHost } from './provider.ts';
import { formatResize, type ResizeRecord } from './resize.ts';

/**
 * The generic managed-resource loop of an InfraHost, after Crossplane's managed reconciler:
 * observe → (create | adopt | wait | block) → update → readiness. It owns what must survive a
 * crash and what the user sees: the create-pending marker, recording an adopted host, the
 * conditions, Events and requeue timing. The provider is reached only through the external
 * client (operator/infra/external.ts); Kubernetes only through the record store and the status
 * draft it is given. Bootstrap is not part of it: a ready host is handed back to the caller.
 *
 * Create safety. The marker is written (guarded by the resource version read at the start of the
 * pass) before the create, the host's id after it. An answer that proves nothing was created (4xx,
 * 429, a conflict) clears the marker. A server error (5xx) is an answer too: it is recorded with
 * the marker, and once the consistency window has passed with nothing carrying the ownership tag
 * (set atomically at create) the create is sent again, with a pause that doubles per attempt. Only
 * a create without any answer (a crash, a lost response) stays unknown: after the grace period it
 * blocks with `CreateUnconfirmed` and tells the user the safe way out.
 */

/** Condition types of an InfraHost besides Ready / Reconciling / Stalled. */
export const InfraHostCondition = {
  Provisioned: 'Provisioned',
  SSHReady: 'SSHReady',
  Bootstrapped: 'Bootstrapped',
  Drifted: 'Drifted',
  /**
   * Written by the finalizer only: `Unknown` while it deletes, `False` when the deletion needs a
   * person. `stk infra down` judges a deletion by the object and this condition alone.
   */
  Deleted: 'Deleted',
} as const;

/** Named reasons of the InfraHost conditions. */
export const InfraHostReason = {
  ConfigInvalid: 'ConfigInvalid',
  HostActive: 'HostActive',
  CreatePending: 'CreatePending',
  CreateRetrying: 'CreateRetrying',
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

/** A host that needs a person (duplicates, a taken name, powered off) is looked at again this often. */
export const BLOCKED_RECHECK_MS = 60_000;
/** After this many creates in a row answered with a server error, the run gets its answer (the retries go on). */
export const CREATE_ATTEMPTS_BEFORE_ANSWER = 3;

/** Where the loop keeps what must survive a crash (annotations of the InfraHost). */
export interface RecordStore {
  /** the create-pending marker, written only if the resource is unchanged since the pass read it */
  markCreatePending(since: string): Promise<void>;
  /** the provider refused the create: nothing was made, the marker (and any failure) goes */
  clearCreatePending(): Promise<void>;
  /** the provider answered the create with a server error: kept next to the marker */
  recordCreateFailure(failure: CreateFailure): Promise<void>;
  /** the host's id (the marker and any failure go), the SSH key it was created with when known, and the run */
  recordHost(id: string, sshKeyFingerprint: string | undefined, run: RunRecord): Promise<void>;
  recordResize(record: ResizeRecord): Promise<void>;
}

export interface LoopInput {
  readonly mr: ManagedHost;
  readonly key: ProviderKey;
  readonly client: ExternalClient;
  readonly store: RecordStore;
  /** the status draft; the loop fills it in */
  readonly status: InfraHostStatus;
  readonly generation: number | undefined;
  /** the run record of this pass; the loop sets `created` / `reconciled` */
  readonly run: RunRecord;
  readonly record: (event: ExternalEvent) => Promise<void>;
  readonly now?: () => number;
  readonly consistencyWindowMs?: number;
}

export type LoopOutcome =
  /** the host is active, unlocked and has its address: bootstrap is next */
  | { readonly kind: 'ready'; readonly host: CloudHost }
  /** look again later; `settled`: the run has its answer (ready, failed, or needs a person) */
  | { readonly kind: 'requeue'; readonly requeueAfterMs: number; readonly settled: boolean };

/** One pass of the managed loop for one InfraHost. Provider errors are thrown (see `cloudErrorOutcome`). */
export async function reconcileManaged(input: LoopInput): Promise<LoopOutcome> {
  const { mr, key, client, store, status, generation, run } = input;
  const now = input.now ?? Date.now;
  const observation = await client.observe(mr, key, now());
  const decision = observation.decision;

  let host: CloudHost;
  switch (decision.kind) {
    case 'create': {
      await store.markCreatePending(isoSeconds(now()));
      try {
        host = await client.create(decision.request);
      } catch (err) {
        if (err instanceof CloudRequestRejectedError || err instanceof CloudCredentialsError || err instanceof CloudRateLimitedError || err instanceof CloudConflictError) {
          // The provider refused before doing anything: no host exists, the marker may go.
          await store.clearCreatePending();
        } else if (err instanceof CloudUnavailableError && err.details.status >= 500) {
          return createFailed(input, err, now());
        }
        // Anything else (no answer at all) leaves the marker: the ownership tag decides later.
        throw err;
      }
      run.created = true;
      await store.recordHost(host.id, key.fingerprint, run);
      await input.record({ type: 'Normal', reason: 'HostCreated', message: `created droplet ${host.id} (${host.name})` });
      break;
    }
    case 'adopt': {
      host = decision.host;
      if (decision.record) {
        // A marker means the create was ours (a crash came between the call and the record).
        if (mr.createPendingSince !== undefined && decision.byName !== true) run.created = true;
        await store.recordHost(host.id, mr.recordedSshKey === undefined ? key.fingerprint : undefined, run);
        await input.record(
          decision.byName === true
            ? { type: 'Normal', reason: 'HostAdopted', message: `adopted droplet ${host.id} (${host.name}) by its name (adopt: byName); adding the ownership tag` }
            : { type: 'Normal', reason: 'HostAdopted', message: `found droplet ${host.id} (${host.name}) by its ownership tag and recorded it` },
        );
      }
      break;
    }
    case 'waitForCreate': {
      const retrying = mr.createFailure !== undefined;
      const reason = retrying ? InfraHostReason.CreateRetrying : InfraHostReason.CreatePending;
      status.phase = 'Provisioning';
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'Unknown', reason, message: decision.message }, generation);
      status.conditions = markReconciling(status.conditions, reason, decision.message, generation);
      return { kind: 'requeue', requeueAfterMs: decision.requeueAfterMs, settled: retrying && (mr.createFailure?.attempts ?? 0) >= CREATE_ATTEMPTS_BEFORE_ANSWER };
    }
    case 'blocked': {
      const message = `${decision.message}; ${decision.hint}`;
      const before = status.conditions?.find((c) => c.type === InfraHostCondition.Provisioned);
      status.phase = 'Failed';
      status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: decision.reason, message }, generation);
      status.conditions = markStalled(status.conditions, decision.reason, message, generation);
      if (decision.reason === 'NameTaken' && (before?.reason !== decision.reason || before.message !== message)) {
        await input.record({ type: 'Warning', reason: decision.reason, message: decision.message });
      }
      return { kind: 'requeue', requeueAfterMs: BLOCKED_RECHECK_MS, settled: true };
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

  // The host: drift, tags, an in-place resize, readiness.
  const assessment = observation.assessment;
  const resize = observation.resize;
  if (assessment === undefined || resize === undefined) {
    // A host we just created: observe it again on the next pass.
    return { kind: 'requeue', ...(await notReady(input, { reason: 'HostStarting', message: `host ${host.id} is being created`, requeueAfterMs: 10_000 })) };
  }
  await recordDrift(input, assessment.drift);
  const updated = await client.update(mr, host, { assessment, resize });
  if (updated.changed) run.reconciled = true;
  for (const e of updated.events) await input.record(e);
  if (formatResize(updated.resize) !== formatResize(mr.resize)) await store.recordResize(updated.resize);

  if (!assessment.ready) {
    return { kind: 'requeue', ...(await notReady(input, assessment.notReady ?? { reason: 'HostNotReady', message: `host ${host.id} is not ready`, requeueAfterMs: 10_000 })) };
  }
  status.conditions = setCondition(
    status.conditions,
    { type: InfraHostCondition.Provisioned, status: 'True', reason: InfraHostReason.HostActive, message: `droplet ${host.id} is active at ${host.publicIPv4 ?? ''}` },
    generation,
  );
  return { kind: 'ready', host };
}

async function notReady(
  input: LoopInput,
  why: { readonly reason: string; readonly message: string; readonly requeueAfterMs?: number },
): Promise<{ requeueAfterMs: number; settled: boolean }> {
  const { status, generation } = input;
  status.phase = 'Provisioning';
  status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: why.reason, message: why.message }, generation);
  if (why.requeueAfterMs === undefined) {
    // Powered off or archived by someone else: a person decides; look again now and then.
    status.phase = 'Failed';
    status.conditions = markRetrying(status.conditions, why.reason, why.message, generation);
    return { requeueAfterMs: BLOCKED_RECHECK_MS, settled: true };
  }
  status.conditions = markReconciling(status.conditions, why.reason, why.message, generation);
  return { requeueAfterMs: why.requeueAfterMs, settled: false };
}

/** The create was answered with a server error: record it next to the marker and try again after the window. */
async function createFailed(input: LoopInput, err: CloudUnavailableError, now: number): Promise<LoopOutcome> {
  const { mr, status, generation, store } = input;
  const failure: CreateFailure = { at: isoSeconds(now), status: err.details.status, attempts: (mr.createFailure?.attempts ?? 0) + 1 };
  await store.recordCreateFailure(failure);
  const retryAt = createRetryAt(failure, input.consistencyWindowMs ?? DEFAULT_CONSISTENCY_WINDOW_MS);
  const message = redactSecrets(
    `${err.message}; nothing carries the ownership tag yet: looking again and creating again at ${new Date(retryAt).toISOString()} (attempt ${failure.attempts + 1})`,
  );
  const answer = failure.attempts >= CREATE_ATTEMPTS_BEFORE_ANSWER;
  status.phase = answer ? 'Failed' : 'Provisioning';
  status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: answer ? 'False' : 'Unknown', reason: InfraHostReason.CreateRetrying, message }, generation);
  status.conditions = answer ? markRetrying(status.conditions, InfraHostReason.CreateRetrying, message, generation) : markReconciling(status.conditions, InfraHostReason.CreateRetrying, message, generation);
  await input.record({ type: 'Warning', reason: InfraHostReason.CreateRetrying, message });
  return { kind: 'requeue', requeueAfterMs: Math.max(1_000, retryAt - now), settled: answer };
}

async function recordDrift(input: LoopInput, drift: readonly DriftItem[]): Promise<void> {
  const { status, generation } = input;
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
  if (before?.status !== 'True' || before.message !== message) await input.record({ type: needsPerson ? 'Warning' : 'Normal', reason, message });
}

/**
 * A provider error that ended a pass, as the status shows it: a rate limit requeues when the
 * provider said; input the user must fix is `config_invalid`; other cloud errors fail the
 * provisioning. Returns the requeue for a rate limit, undefined when the error is to be rethrown.
 */
export function cloudErrorOutcome(
  err: unknown,
  status: InfraHostStatus,
  generation: number | undefined,
  recordConfigInvalid: (message: string) => void,
): { requeueAfterMs: number } | undefined {
  if (err instanceof CloudRateLimitedError) {
    const message = redactSecrets(err.message);
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: status.providerId === undefined ? 'False' : 'Unknown', reason: err.reason, message }, generation);
    status.conditions = markRetrying(status.conditions, err.reason, message, generation);
    return { requeueAfterMs: Math.max(1_000, err.retryAfterMs) };
  }
  if (err instanceof ValidationError || err instanceof CloudCredentialsError) {
    // Input the user must fix: a key that is not registered, a slug the provider refuses, a rejected token.
    recordConfigInvalid(redactSecrets(err.message));
  } else if (isCloudError(err)) {
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Provisioned, status: 'False', reason: err.reason, message: redactSecrets(err.message) }, generation);
    status.phase = 'Failed';
  }
  return undefined;
}

export function isCloudError(err: unknown): err is CloudUnavailableError | CloudRateLimitedError | CloudCredentialsError | CloudRequestRejectedError | CloudConflictError | CloudNotFoundError {
  return (
    err instanceof CloudUnavailableError ||
    err instanceof CloudRateLimitedError ||
    err instanceof CloudCredentialsError ||
    err instanceof CloudRequestRejectedError ||
    err instanceof CloudConflictError ||
    err instanceof CloudNotFoundError
  );
}

// ---------------------------------------------------------------------------------------------

export interface FinalizeInput {
  readonly mr: ManagedHost;
  readonly policy: 'Delete' | 'Orphan';
  /** the external client; undefined when no provider can be reached (the token Secret is gone and none was used before) */
  readonly client: () => Promise<ExternalClient | undefined>;
  readonly status: InfraHostStatus;
  readonly generation: number | undefined;
  readonly record: (event: ExternalEvent) => Promise<void>;
  readonly credentialsHint: string;
  readonly now?: () => number;
  /** told about an error the finalizer retries */
  readonly onError?: (err: unknown) => void;
}

/** One pass of the finalizer: a requeue while the host is being deleted (or cannot be), undefined once the finalizer may go. */
export async function finalizeManaged(input: FinalizeInput): Promise<{ requeueAfterMs: number } | undefined> {
  const { mr, status, generation } = input;
  const now = input.now ?? Date.now;
  status.phase = 'Deleting';
  if (input.policy === 'Orphan') {
    await input.record({ type: 'Normal', reason: 'HostOrphaned', message: `deletionPolicy is Orphan: droplet ${status.providerId ?? '(none recorded)'} is left running` });
    return undefined;
  }
  const wait = (reason: string, message: string, ms: number, blocked = false): { requeueAfterMs: number } => {
    status.conditions = blocked ? markStalled(status.conditions, reason, message, generation) : markReconciling(status.conditions, reason, message, generation);
    status.conditions = setCondition(status.conditions, { type: InfraHostCondition.Deleted, status: blocked ? 'False' : 'Unknown', reason, message }, generation);
    return { requeueAfterMs: ms };
  };
  try {
    const client = await input.client();
    if (client === undefined) return wait(InfraHostReason.CredentialsMissing, input.credentialsHint, 30_000, true);
    const result = await client.delete({ ...mr, policy: input.policy }, now());
    switch (result.kind) {
      case 'gone':
        await input.record({ type: 'Normal', reason: 'HostDeleted', message: result.message });
        return undefined;
      case 'deleting':
        await input.record({
          type: 'Normal',
          reason: 'HostDeleting',
          message: `deleting droplet ${result.id}${result.outcome === 'absent' ? ' (already gone)' : ''}; waiting for the provider to confirm`,
        });
        return wait(InfraHostReason.Deleting, `deleting droplet ${result.id}; waiting for the provider to answer 404`, result.requeueAfterMs);
      case 'wait':
        return wait(InfraHostReason.Deleting, result.message, result.requeueAfterMs);
      case 'blocked':
        return wait(result.reason, `${result.message}; ${result.hint}`, BLOCKED_RECHECK_MS, true);
    }
  } catch (err) {
    // A finalizer never gives up: say why and try again (a rate limit says when).
    input.onError?.(err);
    const e = err instanceof Error ? err : new InternalError(String(err));
    const reason = (e as { reason?: unknown }).reason;
    const ms = err instanceof CloudRateLimitedError ? Math.max(1_000, err.retryAfterMs) : 15_000;
    return wait(typeof reason === 'string' ? reason : 'InternalError', redactSecrets(`cannot delete the droplet yet: ${e.message}`), ms);
  }
}

/** ISO 8601 without milliseconds (the marker's format). */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Reconciling=True; a Ready host stays Ready (a re-check of a ready host, e.g. a new run's bootstrap). */
export function markReconcilingKeepReady(conditions: InfraHostStatus['conditions'], reason: string, message: string, generation: number | undefined): NonNullable<InfraHostStatus['conditions']> {
  if (conditions?.find((c) => c.type === 'Ready')?.status === 'True') {
    return setCondition(conditions, { type: 'Reconciling', status: 'True', reason, message }, generation);
  }
  return markReconciling(conditions, reason, message, generation);
}
