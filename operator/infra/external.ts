import type { AdoptPolicy, CreateFailure, HostAssessment, HostSpec, ProvisionDecision, ResizeState } from './plan.ts';
import type { CloudHost, DeleteOutcome } from './provider.ts';
import type { ResizeRecord } from './resize.ts';

/**
 * The managed-resource shape of an InfraHost (after Crossplane's managed reconciler): an
 * external client that knows the provider (`observe`, `create`, `update`, `delete`) and a
 * generic loop (operator/infra/managed.ts) that owns the create-pending marker, adoption,
 * conditions and requeue timing. The client never writes to Kubernetes; the loop never calls
 * the provider's API itself.
 */

/** What the loop knows about one InfraHost: its spec and what earlier passes recorded. */
export interface ManagedHost {
  /** metadata.uid: the ownership tag is made from it */
  readonly uid: string;
  readonly spec: HostSpec;
  /** how a host found by name and not by ownership tag is treated */
  readonly adopt?: AdoptPolicy;
  /** the recorded provider id (annotation, else status.providerId) */
  readonly recordedId?: string;
  /** the create-pending marker (ISO 8601) */
  readonly createPendingSince?: string;
  /** the server error the last create was answered with, if any */
  readonly createFailure?: CreateFailure;
  /** the SSH key fingerprint the host was created with */
  readonly recordedSshKey?: string;
  /** the resize in flight, as recorded */
  readonly resize: ResizeRecord;
}

/** The SSH key a new host gets (resolved from the spec before the loop runs). */
export interface ProviderKey {
  readonly id: string;
  readonly fingerprint: string;
}

/**
 * What `observe` found at the provider. `decision` says how to get to exactly one host for this
 * resource (see plan.ts); when it names a host, `assessment` says whether that host is up to date
 * with the spec (drift, tags to add, the next resize step, readiness).
 */
export interface Observation {
  readonly decision: ProvisionDecision;
  /** set when the decision names a host */
  readonly assessment?: HostAssessment;
  /** the recorded resize with the current state of its action (read once per pass) */
  readonly resize?: ResizeState;
}

/** An Event the loop should record on the resource (the client does not record any itself). */
export interface ExternalEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** What `update` changed at the provider. */
export interface UpdateResult {
  /** something was changed on the host (tags, a resize step) */
  readonly changed: boolean;
  /** the resize state to record */
  readonly resize: ResizeRecord;
  readonly events: readonly ExternalEvent[];
}

/** The finalizer's view: what `delete` found and did. */
export type DeleteResult =
  /** nothing (more) at the provider: the finalizer may go */
  | { readonly kind: 'gone'; readonly message: string }
  /** a delete was sent; the provider's 404 must confirm it on a later pass */
  | { readonly kind: 'deleting'; readonly id: string; readonly outcome: DeleteOutcome; readonly requeueAfterMs: number }
  | { readonly kind: 'wait'; readonly message: string; readonly requeueAfterMs: number }
  /** a person must look (several hosts carry the tag, or the tag and the record disagree) */
  | { readonly kind: 'blocked'; readonly reason: string; readonly message: string; readonly hint: string };

export interface ExternalClient {
  /** Looks at the provider: the host of this resource (by ownership tag, recorded id, or name), and how it compares with the spec. */
  observe(mr: ManagedHost, key: ProviderKey, now: number): Promise<Observation>;
  /** Creates the host with exactly this decision's request. Not idempotent: the loop guards it. */
  create(request: Extract<ProvisionDecision, { kind: 'create' }>['request']): Promise<CloudHost>;
  /** Brings an observed host in line with its spec in place (tags, one resize step). */
  update(mr: ManagedHost, host: CloudHost, observed: { readonly assessment: HostAssessment; readonly resize: ResizeState }): Promise<UpdateResult>;
  /** One step of deleting the host as the deletion policy says. */
  delete(mr: ManagedHost & { readonly policy: 'Delete' | 'Orphan' }, now: number): Promise<DeleteResult>;
}
