import { dropletName, hostTags, MANAGED_TAG_PREFIX, ownershipTag, type DeletionPolicy, type InfraHostSpec } from '../../core/infra/hosts.ts';
import type { CloudHost, CreateHostRequest, HostAction } from './provider.ts';

/**
 * The decisions the InfraHost reconciler takes, as pure functions of what it has observed. The
 * reconciler does the I/O (list by ownership tag, get by id, create, tag, resize, delete) and
 * records what these functions tell it to; it never decides on its own.
 *
 * Identity. A cloud host belongs to an InfraHost when it carries the ownership tag
 * `santokit-owner-<uid>`. Names are not unique at DigitalOcean, so a name is never used to find
 * a host. The droplet id, once known, is recorded (annotation + status) and cross-checked.
 *
 * Create safety. Before the create call the reconciler records a create-pending marker (with
 * its time); after it, the droplet id, and clears the marker. A crash between the two leaves a
 * marker: the next pass lists by ownership tag first and adopts what it finds. If nothing carries
 * the tag, a create may still have happened (or not): we wait a grace period, then stop and ask
 * a person, rather than risk a second host.
 *
 * Drift, decided as follows:
 * - region, image and SSH key are fixed when a host is created; changing them means a new host
 *   and a new disk. They are reported (`Drifted`), never replaced automatically.
 * - size is reconciled in place: graceful shutdown (hard power-off if that fails), a CPU/RAM
 *   resize with `disk: false` (reversible; a disk resize is permanent and forbids downsizing),
 *   power on. That is downtime, and it only happens because someone changed `size` in Git. A
 *   resize the provider refuses (e.g. a size smaller than the disk) powers the host back on, is
 *   reported, and is not retried until the spec names another size.
 * - tags are reconciled in place by adding missing ones. Tags are never removed: firewalls and
 *   monitoring select hosts by tag, and tags added by other tools are not ours to take away.
 *   Unexpected `santokit-*` tags are reported.
 */

/** Annotations the reconciler keeps on an InfraHost (the record that survives a crash). */
export const ANNOTATION_PROVIDER_ID = 'santokit.io/provider-id';
export const ANNOTATION_CREATE_PENDING = 'santokit.io/create-pending';
/** The server error the last create was answered with (JSON, see CreateFailure); kept with the marker. */
export const ANNOTATION_CREATE_FAILED = 'santokit.io/create-failed';

/** How long a create-pending marker without a visible host is waited out before a person is asked. */
export const DEFAULT_CREATE_GRACE_MS = 10 * 60_000;

/** The parts of the InfraHost spec the decisions read. */
export type HostSpec = Pick<InfraHostSpec, 'project' | 'environment' | 'host' | 'region' | 'size' | 'image' | 'tags'>;

export interface ProvisionInput {
  readonly spec: HostSpec;
  /** metadata.uid of the InfraHost */
  readonly uid: string;
  /** provider ids of the SSH keys to install on a new host */
  readonly sshKeyIds: readonly string[];
  /** cloud-init user data for a new host, if any */
  readonly userData?: string;
  /** the recorded droplet id (annotation, else status.providerId) */
  readonly recordedId?: string;
  /** the create-pending marker: when the create was started (ISO 8601) */
  readonly createPendingSince?: string;
  /** every host carrying the ownership tag */
  readonly owned: readonly CloudHost[];
  /** the answer to a `lookupRecorded` decision: the host, or null when the provider says it is gone */
  readonly recordedLookup?: CloudHost | null;
  /** epoch milliseconds */
  readonly now: number;
  readonly createGraceMs?: number;
  /**
   * Hosts that carry the host's name but not its ownership tag (listed only when nothing carries
   * the tag and no id is recorded). DigitalOcean allows equal names: such a host is not ours.
   */
  readonly named?: readonly CloudHost[];
  /** `byName`: a host found by name (and not by tag) is adopted; otherwise it blocks the create */
  readonly adopt?: AdoptPolicy;
  /** the provider's answer to the last create, when it answered with a server error (see CreateFailure) */
  readonly createFailure?: CreateFailure;
  /** how long after a failed create a tag lookup is trusted to show a host the create made; default 10 s */
  readonly consistencyWindowMs?: number;
}

/** How a host found by name (not by ownership tag) is treated: refused (default) or adopted. */
export type AdoptPolicy = 'byName';

/**
 * A create the provider answered with a server error (5xx), recorded with the create-pending
 * marker. Unlike a crash or a lost answer, the provider did answer: once the consistency window
 * has passed and nothing carries the ownership tag (the tag is set atomically at create), the
 * create is known not to have happened and is sent again, with a growing pause.
 */
export interface CreateFailure {
  /** when the answer came (ISO 8601) */
  readonly at: string;
  /** the HTTP status */
  readonly status: number;
  /** how many creates in a row were answered so */
  readonly attempts: number;
}

export const DEFAULT_CONSISTENCY_WINDOW_MS = 10_000;
/** the longest pause between two creates after server errors */
export const MAX_CREATE_RETRY_MS = 5 * 60_000;

/** When a create answered with a server error may be sent again: the window, doubling per attempt, capped. */
export function createRetryAt(failure: CreateFailure, windowMs = DEFAULT_CONSISTENCY_WINDOW_MS): number {
  const at = Date.parse(failure.at);
  const pause = Math.min(MAX_CREATE_RETRY_MS, windowMs * 2 ** Math.max(0, failure.attempts - 1));
  return (Number.isFinite(at) ? at : 0) + pause;
}

/** Reads the create-failure annotation; undefined when absent or not one. */
export function parseCreateFailure(text: string | undefined): CreateFailure | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    const v = JSON.parse(text) as Partial<CreateFailure> | null;
    if (v === null || typeof v.at !== 'string' || typeof v.status !== 'number' || typeof v.attempts !== 'number') return undefined;
    return { at: v.at, status: v.status, attempts: v.attempts };
  } catch {
    return undefined;
  }
}

export function formatCreateFailure(f: CreateFailure): string {
  return JSON.stringify({ at: f.at, status: f.status, attempts: f.attempts });
}

export type BlockedReason = 'DuplicateHosts' | 'OwnershipMismatch' | 'HostMissing' | 'CreateUnconfirmed' | 'NameTaken';

export type ProvisionDecision =
  /** record the create-pending marker, create with exactly this request, record the id, clear the marker */
  | { readonly kind: 'create'; readonly request: CreateHostRequest }
  /** this is our host; when `record` is set, write its id and clear the marker; `byName`: found by name under `adopt: byName` */
  | { readonly kind: 'adopt'; readonly host: CloudHost; readonly record: boolean; readonly byName?: true }
  /** nothing carries the tag but an id is recorded: get it by id and decide again with `recordedLookup` */
  | { readonly kind: 'lookupRecorded'; readonly id: string }
  /** a create was started moments ago and its host is not visible yet: requeue */
  | { readonly kind: 'waitForCreate'; readonly requeueAfterMs: number; readonly message: string }
  /** a person must look: set a condition with this reason and message; do not create or delete */
  | { readonly kind: 'blocked'; readonly reason: BlockedReason; readonly ids: readonly string[]; readonly message: string; readonly hint: string };

/** The create request for a spec: deterministic (same input, same request, tags sorted). */
export function createRequest(spec: HostSpec, uid: string, sshKeyIds: readonly string[], userData?: string): CreateHostRequest {
  return {
    name: dropletName(spec.project, spec.environment, spec.host),
    region: spec.region,
    size: spec.size,
    image: spec.image,
    sshKeys: [...new Set(sshKeyIds)].sort(),
    tags: hostTags(spec, uid),
    ...(userData === undefined ? {} : { userData }),
  };
}

/** Decides how to get from the observed state to exactly one cloud host for this InfraHost. */
export function decideProvisioning(input: ProvisionInput): ProvisionDecision {
  const tag = ownershipTag(input.uid);
  const owned = [...input.owned].sort(byId);
  const recorded = input.recordedId === undefined || input.recordedId === '' ? undefined : input.recordedId;

  if (owned.length > 1) {
    const ids = owned.map((h) => h.id);
    return {
      kind: 'blocked',
      reason: 'DuplicateHosts',
      ids,
      message: `${owned.length} hosts carry the ownership tag ${tag}: ${ids.join(', ')}`,
      hint: `keep one, delete the others at the provider; Santokit never deletes a host it cannot tell apart${recorded === undefined ? '' : ` (the recorded one is ${recorded})`}`,
    };
  }

  const found = owned[0];
  if (found !== undefined) {
    if (recorded !== undefined && recorded !== found.id) {
      return {
        kind: 'blocked',
        reason: 'OwnershipMismatch',
        ids: [recorded, found.id],
        message: `host ${found.id} carries the ownership tag ${tag}, but host ${recorded} is recorded for this resource`,
        hint: `check which host is right; remove the ownership tag from the other, or fix the ${ANNOTATION_PROVIDER_ID} annotation`,
      };
    }
    return { kind: 'adopt', host: found, record: recorded !== found.id || input.createPendingSince !== undefined };
  }

  if (recorded !== undefined) {
    if (input.recordedLookup === undefined) return { kind: 'lookupRecorded', id: recorded };
    if (input.recordedLookup !== null) {
      // Our recorded host lost its ownership tag (someone edited tags): it is still ours by id;
      // assessHost lists the tag as missing and it is added back.
      return { kind: 'adopt', host: input.recordedLookup, record: input.createPendingSince !== undefined };
    }
    return {
      kind: 'blocked',
      reason: 'HostMissing',
      ids: [recorded],
      message: `host ${recorded}, recorded for this resource, no longer exists at the provider`,
      hint: `Santokit does not recreate a deleted host on its own; remove the ${ANNOTATION_PROVIDER_ID} annotation to let it create a new one`,
    };
  }

  return decideAbsent(input);
}

/**
 * Nothing carries the ownership tag and no id is recorded: the create-pending marker decides
 * whether a create may go out, then the name decides whether it is needed.
 */
export function decideAbsent(input: ProvisionInput): ProvisionDecision {
  const tag = ownershipTag(input.uid);
  const name = dropletName(input.spec.project, input.spec.environment, input.spec.host);
  if (input.createPendingSince !== undefined) {
    const since = Date.parse(input.createPendingSince);
    const failure = input.createFailure;
    if (failure !== undefined && Number.isFinite(since) && Date.parse(failure.at) >= since) {
      // The provider answered the create with a server error: after the consistency window an
      // empty tag lookup proves nothing was created, so the create is sent again (with backoff).
      const retryAt = createRetryAt(failure, input.consistencyWindowMs);
      if (input.now < retryAt) {
        return {
          kind: 'waitForCreate',
          requeueAfterMs: Math.max(1_000, retryAt - input.now),
          message: `the create answered ${failure.status} at ${failure.at} (attempt ${failure.attempts}); no host carries the tag ${tag} yet; creating again at ${new Date(retryAt).toISOString()}`,
        };
      }
    } else {
      const grace = input.createGraceMs ?? DEFAULT_CREATE_GRACE_MS;
      const age = Number.isFinite(since) ? input.now - since : Number.POSITIVE_INFINITY;
      if (age < grace) {
        return {
          kind: 'waitForCreate',
          requeueAfterMs: Math.max(1_000, Math.min(15_000, grace - age)),
          message: `a create was started at ${input.createPendingSince}; waiting for a host with tag ${tag} to appear`,
        };
      }
      return {
        kind: 'blocked',
        reason: 'CreateUnconfirmed',
        ids: [],
        message: `a create was started at ${input.createPendingSince} and its answer was lost, and no host carries the ownership tag ${tag}; not creating another blindly`,
        hint: `look for a host named ${name} at the provider: if there is one, add the tag ${tag} to it (it is adopted at once); if there is none, remove the annotation (kubectl annotate infrahost <name> ${ANNOTATION_CREATE_PENDING}-) and the host is created. That is safe: a host with that name is never duplicated (see adopt: byName)`,
      };
    }
  }

  const named = [...(input.named ?? [])].sort(byId);
  if (named.length > 0) {
    const ids = named.map((h) => h.id);
    if (input.adopt === 'byName' && named.length === 1 && named[0] !== undefined) {
      return { kind: 'adopt', host: named[0], record: true, byName: true };
    }
    const list = ids.join(', ');
    return {
      kind: 'blocked',
      reason: 'NameTaken',
      ids,
      message:
        named.length === 1
          ? `droplet ${list} is already named ${name} but does not carry the ownership tag ${tag}; not creating a second host with that name`
          : `droplets ${list} are already named ${name} and none carries the ownership tag ${tag}; not creating another`,
      hint:
        named.length === 1
          ? `to take it over, set adopt: byName for this host in infra/hosts.yaml (Santokit then adds its tags to droplet ${list}); otherwise rename or delete it at the provider`
          : 'delete or rename all but one of them at the provider (then adopt: byName takes the one left), or rename this host',
    };
  }

  return { kind: 'create', request: createRequest(input.spec, input.uid, input.sshKeyIds, input.userData) };
}

// ---------------------------------------------------------------------------------------------

export type DriftField = 'region' | 'image' | 'sshKey' | 'size' | 'tags';

export interface DriftItem {
  readonly field: DriftField;
  readonly desired: string;
  readonly actual: string;
  /** reported: needs a person (a new host); inPlace: being reconciled; failed: in-place change refused, not retried */
  readonly remedy: 'reported' | 'inPlace' | 'failed';
  readonly message: string;
}

/** What the reconciler keeps between passes about a resize in flight. */
export interface ResizeState {
  /** set when we powered the host off for a resize; cleared when the step is `none` again */
  readonly inProgress: boolean;
  /** the last action we started (its current status, from getAction) */
  readonly action?: HostAction;
  /** a size whose resize the provider refused; not retried until the spec names another size */
  readonly failedSize?: string;
}

export type ResizeStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'wait'; readonly reason: string }
  /** start a graceful shutdown; set `inProgress` */
  | { readonly kind: 'shutdown' }
  /** the graceful shutdown failed: hard power-off */
  | { readonly kind: 'powerOff' }
  | { readonly kind: 'resize'; readonly size: string }
  /** power the host back on (after a resize, or after a refused one) */
  | { readonly kind: 'powerOn' }
  /** the provider refused: record `failedSize` = this size, report, and let the next pass power on */
  | { readonly kind: 'failed'; readonly size: string; readonly message: string };

export type NotReadyReason = 'HostStarting' | 'NoPublicAddress' | 'ActionRunning' | 'Resizing' | 'PoweredOff' | 'Archived' | 'UnknownStatus';

export interface HostAssessment {
  /** active, unlocked, with a public IPv4: go on to SSH readiness */
  readonly ready: boolean;
  readonly notReady?: { readonly reason: NotReadyReason; readonly message: string; readonly requeueAfterMs?: number };
  /** sorted by field */
  readonly drift: readonly DriftItem[];
  /** add these tags to the host (sorted) */
  readonly tagsToAdd: readonly string[];
  readonly resize: ResizeStep;
}

export interface AssessInput {
  readonly spec: HostSpec;
  readonly uid: string;
  readonly host: CloudHost;
  /** fingerprint of the SSH key the host was created with (recorded at create) */
  readonly recordedSshKey?: string;
  /** fingerprint of the SSH key the spec resolves to now */
  readonly desiredSshKey?: string;
  readonly resize?: ResizeState;
}

/** Compares an adopted host with its spec: readiness, drift, and the in-place changes to make. */
export function assessHost(input: AssessInput): HostAssessment {
  const { spec, host } = input;
  const drift: DriftItem[] = [];
  const resizeState: ResizeState = input.resize ?? { inProgress: false };

  if (host.region !== '' && host.region !== spec.region) {
    drift.push({ field: 'region', desired: spec.region, actual: host.region, remedy: 'reported', message: `region is ${host.region}, the spec says ${spec.region}; moving a host needs a new host` });
  }
  if (host.image !== '' && host.image !== spec.image) {
    drift.push({ field: 'image', desired: spec.image, actual: host.image, remedy: 'reported', message: `image is ${host.image}, the spec says ${spec.image}; changing it means rebuilding the disk` });
  }
  if (input.recordedSshKey !== undefined && input.desiredSshKey !== undefined && input.recordedSshKey !== input.desiredSshKey) {
    drift.push({
      field: 'sshKey',
      desired: input.desiredSshKey,
      actual: input.recordedSshKey,
      remedy: 'reported',
      message: `the host was created with SSH key ${input.recordedSshKey}, the spec now names ${input.desiredSshKey}; keys are installed at creation`,
    });
  }
  if (host.size !== '' && host.size !== spec.size) {
    const refused = resizeState.failedSize === spec.size;
    drift.push({
      field: 'size',
      desired: spec.size,
      actual: host.size,
      remedy: refused ? 'failed' : 'inPlace',
      message: refused ? `size is ${host.size}; the resize to ${spec.size} was refused by the provider` : `size is ${host.size}, resizing to ${spec.size}`,
    });
  }

  const wanted = hostTags(spec, input.uid);
  const tagsToAdd = wanted.filter((t) => !host.tags.includes(t));
  const strays = host.tags.filter((t) => (t === MANAGED_TAG_PREFIX || t.startsWith(`${MANAGED_TAG_PREFIX}-`)) && !wanted.includes(t));
  if (tagsToAdd.length > 0 || strays.length > 0) {
    const parts: string[] = [];
    if (tagsToAdd.length > 0) parts.push(`adding ${tagsToAdd.join(', ')}`);
    if (strays.length > 0) parts.push(`unexpected ${strays.join(', ')} (left in place)`);
    drift.push({
      field: 'tags',
      desired: wanted.join(','),
      actual: host.tags.join(','),
      remedy: tagsToAdd.length > 0 ? 'inPlace' : 'reported',
      message: `tags: ${parts.join('; ')}`,
    });
  }
  drift.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));

  const resize = planResize(host, spec.size, resizeState);
  const notReady = readiness(host, resize, resizeState);
  return {
    ready: notReady === undefined,
    ...(notReady === undefined ? {} : { notReady }),
    drift,
    tagsToAdd,
    resize,
  };
}

/** The next step of an in-place resize (see the comment at the top of this file). */
export function planResize(host: CloudHost, desiredSize: string, state: ResizeState): ResizeStep {
  const needsResize = host.size !== '' && host.size !== desiredSize && state.failedSize !== desiredSize;
  if (!needsResize && !state.inProgress) return { kind: 'none' };

  const action = state.action;
  if (action?.status === 'in-progress') return { kind: 'wait', reason: `${action.type} action ${action.id} is running` };
  if (host.locked) return { kind: 'wait', reason: 'the provider has an action running on the host' };
  if (action?.status === 'errored') {
    if (action.type === 'shutdown' && host.status === 'active') return { kind: 'powerOff' };
    if (action.type === 'resize') return { kind: 'failed', size: desiredSize, message: `the provider refused to resize to ${desiredSize}` };
    if (action.type === 'power_off' && host.status === 'active') return { kind: 'failed', size: desiredSize, message: 'the host could not be powered off for the resize' };
  }

  if (needsResize) {
    if (host.status === 'active') return { kind: 'shutdown' };
    if (host.status === 'off') return { kind: 'resize', size: desiredSize };
    if (host.status === 'new') return { kind: 'wait', reason: 'the host is still being created' };
    return { kind: 'none' };
  }
  if (host.status === 'off') return { kind: 'powerOn' };
  return { kind: 'none' };
}

function readiness(host: CloudHost, resize: ResizeStep, state: ResizeState): HostAssessment['notReady'] {
  if (resize.kind !== 'none' || (state.inProgress && host.status !== 'active')) {
    return { reason: 'Resizing', message: `resizing the host (${resize.kind === 'wait' ? resize.reason : resize.kind})`, requeueAfterMs: 10_000 };
  }
  switch (host.status) {
    case 'new':
      return { reason: 'HostStarting', message: `host ${host.id} is being created`, requeueAfterMs: 10_000 };
    case 'off':
      return { reason: 'PoweredOff', message: `host ${host.id} is powered off; Santokit does not power on a host it did not power off` };
    case 'archive':
      return { reason: 'Archived', message: `host ${host.id} is archived` };
    case 'unknown':
      return { reason: 'UnknownStatus', message: `host ${host.id} is in a state Santokit does not know`, requeueAfterMs: 30_000 };
    case 'active':
      break;
  }
  if (host.locked) return { reason: 'ActionRunning', message: `an action is running on host ${host.id}`, requeueAfterMs: 10_000 };
  if (host.publicIPv4 === undefined) return { reason: 'NoPublicAddress', message: `host ${host.id} has no public IPv4 address yet`, requeueAfterMs: 5_000 };
  return undefined;
}

// ---------------------------------------------------------------------------------------------

export interface DeletionInput {
  readonly policy: DeletionPolicy;
  readonly uid: string;
  readonly recordedId?: string;
  readonly createPendingSince?: string;
  readonly owned: readonly CloudHost[];
  /** the answer to a `lookup` decision: the host, or null when the provider says it is gone */
  readonly lookup?: CloudHost | null;
  readonly now: number;
  readonly createGraceMs?: number;
}

export type DeletionDecision =
  /** nothing (more) to do at the provider: remove the finalizer */
  | { readonly kind: 'release'; readonly message: string }
  /** get this id and decide again with `lookup` (the provider's 404 is the only proof of gone) */
  | { readonly kind: 'lookup'; readonly id: string }
  /** delete by id (the provider's 404 means already gone), then requeue to confirm */
  | { readonly kind: 'delete'; readonly id: string; readonly requeueAfterMs: number }
  | { readonly kind: 'wait'; readonly requeueAfterMs: number; readonly message: string }
  | { readonly kind: 'blocked'; readonly reason: 'DuplicateHosts' | 'OwnershipMismatch'; readonly ids: readonly string[]; readonly message: string; readonly hint: string };

/** Decides the finalizer's next step. The finalizer is released only once the provider answers 404. */
export function decideDeletion(input: DeletionInput): DeletionDecision {
  if (input.policy === 'Orphan') return { kind: 'release', message: 'deletionPolicy is Orphan: the host is left running' };
  const tag = ownershipTag(input.uid);
  const owned = [...input.owned].sort(byId);
  const recorded = input.recordedId === undefined || input.recordedId === '' ? undefined : input.recordedId;
  if (owned.length > 1) {
    const ids = owned.map((h) => h.id);
    return {
      kind: 'blocked',
      reason: 'DuplicateHosts',
      ids,
      message: `${owned.length} hosts carry the ownership tag ${tag}: ${ids.join(', ')}; not deleting any`,
      hint: 'delete the hosts at the provider by hand, or set deletionPolicy: Orphan',
    };
  }
  const found = owned[0];
  if (found !== undefined && recorded !== undefined && found.id !== recorded) {
    return {
      kind: 'blocked',
      reason: 'OwnershipMismatch',
      ids: [recorded, found.id],
      message: `host ${found.id} carries the ownership tag ${tag}, but host ${recorded} is recorded; not deleting either`,
      hint: 'delete the right host at the provider by hand, or set deletionPolicy: Orphan',
    };
  }
  const id = found?.id ?? recorded;
  if (id === undefined) {
    if (input.createPendingSince !== undefined) {
      const since = Date.parse(input.createPendingSince);
      const grace = input.createGraceMs ?? DEFAULT_CREATE_GRACE_MS;
      if (Number.isFinite(since) && input.now - since < grace) {
        return { kind: 'wait', requeueAfterMs: 10_000, message: 'a create may still be in flight; waiting before releasing the finalizer' };
      }
    }
    return { kind: 'release', message: 'no host was ever recorded or tagged for this resource' };
  }
  if (input.lookup === undefined) return { kind: 'lookup', id };
  if (input.lookup === null) return { kind: 'release', message: `host ${id} is gone` };
  return { kind: 'delete', id, requeueAfterMs: 5_000 };
}

function byId(a: CloudHost, b: CloudHost): number {
  return Number(a.id) - Number(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
