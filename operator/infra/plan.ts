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
}

export type BlockedReason = 'DuplicateHosts' | 'OwnershipMismatch' | 'HostMissing' | 'CreateUnconfirmed';

export type ProvisionDecision =
  /** record the create-pending marker, create with exactly this request, record the id, clear the marker */
  | { readonly kind: 'create'; readonly request: CreateHostRequest }
  /** this is our host; when `record` is set, write its id and clear the marker */
  | { readonly kind: 'adopt'; readonly host: CloudHost; readonly record: boolean }
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

  if (input.createPendingSince !== undefined) {
    const since = Date.parse(input.createPendingSince);
    const grace = input.createGraceMs ?? DEFAULT_CREATE_GRACE_MS;
    const age = Number.isFinite(since) ? input.now - since : Number.POSITIVE_INFINITY;
    if (age < grace) {
      return {
        kind: 'waitForCreate',
        requeueAfterMs: Math.max(1_000, Math.min(15_000, grace - age)),
        message: `a create was started at ${input.createPendingSince}; waiting for a host with tag ${tag} to appear`,
      };
    }
    const name = dropletName(input.spec.project, input.spec.environment, input.spec.host);
    return {
      kind: 'blocked',
      reason: 'CreateUnconfirmed',
      ids: [],
      message: `a create was started at ${input.createPendingSince}, but no host carries the ownership tag ${tag}; not creating another blindly`,
      hint: `look for a host named ${name} at the provider: if there is none, remove the ${ANNOTATION_CREATE_PENDING} annotation to create it; if there is one, add the tag ${tag} to it`,
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
