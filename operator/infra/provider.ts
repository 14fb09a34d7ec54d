/**
 * The cloud-provider interface the InfraHost reconciler talks to, and the provider-neutral host
 * model. A provider maps its own API onto these; nothing above this file knows a provider's JSON.
 *
 * Identity: a host is identified by its provider id, and found again by its ownership tag.
 * Provider names are not unique (DigitalOcean allows two droplets with one name).
 */

/** Lifecycle of a host as the provider reports it. `unknown` covers states we do not model. */
export type HostStatus = 'new' | 'active' | 'off' | 'archive' | 'unknown';

/** A cloud host as the reconciler sees it. */
export interface CloudHost {
  /** provider id, as a string (DigitalOcean droplet ids are integers) */
  readonly id: string;
  readonly name: string;
  readonly status: HostStatus;
  /** the first public IPv4 address; absent until the provider assigns one */
  readonly publicIPv4: string | undefined;
  /** region slug */
  readonly region: string;
  /** size slug */
  readonly size: string;
  /** image slug, or the image id when the image has no slug (snapshots, custom images) */
  readonly image: string;
  /** sorted */
  readonly tags: readonly string[];
  /** true while a provider action (power, resize …) is running; no other action may start */
  readonly locked: boolean;
  /** creation time as the provider reports it (ISO 8601) */
  readonly createdAt: string;
}

/** Everything needed to create a host; equal inputs must produce equal requests. */
export interface CreateHostRequest {
  readonly name: string;
  readonly region: string;
  readonly size: string;
  readonly image: string;
  /** provider SSH key ids (or fingerprints) installed for root */
  readonly sshKeys: readonly string[];
  /** sorted, unique; must include the ownership tag */
  readonly tags: readonly string[];
  /** cloud-init user data; optional */
  readonly userData?: string;
}

export interface SshKeyInfo {
  readonly id: string;
  readonly name: string;
  /** the provider's fingerprint format (DigitalOcean: MD5, colon-separated hex) */
  readonly fingerprint: string;
  readonly publicKey: string;
}

export type ActionStatus = 'in-progress' | 'completed' | 'errored';

/** An asynchronous provider operation on a host (power off/on, resize). */
export interface HostAction {
  readonly id: string;
  /** provider action type, e.g. `resize`, `shutdown`, `power_off`, `power_on` */
  readonly type: string;
  readonly status: ActionStatus;
  readonly hostId: string;
}

export type DeleteOutcome = 'deleted' | 'absent';

/**
 * A cloud provider. Every method throws errors from operator/infra/errors.ts (all within the
 * core/errors.ts hierarchy): credentials problems are terminal, unavailability is retryable.
 */
export interface CloudProvider {
  /** provider name as used in `spec.provider`, e.g. `digitalocean` */
  readonly name: string;

  /** Creates a host. Not idempotent: the caller guards it (create-pending marker + ownership tag). */
  createHost(request: CreateHostRequest): Promise<CloudHost>;
  /** Every host carrying `tag`, all pages, sorted by id. */
  listHostsByTag(tag: string): Promise<CloudHost[]>;
  /** Every host with exactly this name (case-insensitive, as the provider compares), all pages, sorted by id. */
  listHostsByName(name: string): Promise<CloudHost[]>;
  /** The host with this id, or undefined when the provider does not know it. */
  getHost(id: string): Promise<CloudHost | undefined>;
  /** Deletes by id; a host that is already gone is `absent`, not an error. */
  deleteHost(id: string): Promise<DeleteOutcome>;

  /** An SSH key registered at the provider, by its exact name; undefined when there is none. */
  findSshKeyByName(name: string): Promise<SshKeyInfo | undefined>;
  /** Registers a public key (OpenSSH format) under `name`. */
  createSshKey(name: string, publicKey: string): Promise<SshKeyInfo>;

  /** Adds tags to a host (tags are created as needed). Adding a tag it already has is a no-op. */
  tagHost(id: string, tags: readonly string[]): Promise<void>;

  /** Starts a graceful shutdown of a host (needed before a resize). */
  shutdownHost(id: string): Promise<HostAction>;
  /** Starts a hard power-off; the fallback when a graceful shutdown errored. */
  powerOffHost(id: string): Promise<HostAction>;
  /** Starts powering a host on. */
  powerOnHost(id: string): Promise<HostAction>;
  /** Starts a CPU/RAM resize of a powered-off host (the disk is not grown, so it stays reversible). */
  resizeHost(id: string, size: string): Promise<HostAction>;
  /** The current state of an action started earlier. */
  getAction(id: string): Promise<HostAction>;
}
