import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Kinds } from '../../core/api/resources.ts';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface Lease extends KubeObject {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: a lease held by someone
 * else counts as expired only after it has not changed for leaseDuration as observed by our own
 * clock (no trust in other machines' clocks). Updates carry the resourceVersion, so two
 * candidates can never both win. Emits `started` when leadership is gained and `stopped` when it
 * is lost (renewal failed for renewDeadline); the manager exits on `stopped`.
 */
export class LeaderElector extends EventEmitter {
  private leading = false;
  private observed: { record: string; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private stopping = false;
  /** true once we know whether we lead (for /readyz) */
  stateKnown = false;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    readonly options: LeaderElectionOptions,
  ) {
    super();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  private schedule(): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => void this.tick(), this.options.retryPeriodMs * (this.leading ? 1 : 1 + Math.random() * 0.2));
  }

  private async tick(): Promise<void> {
    try {
      const ok = await this.tryAcquireOrRenew();
      this.stateKnown = true;
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leading) {
          this.leading = true;
          this.log.info({ identity: this.options.identity }, 'became leader');
          this.emit('started');
        }
      } else if (this.leading) {
        this.lose('lease taken by another replica');
        return;
      }
    } catch (err) {
      this.log.warn({ err }, 'leader election attempt failed');
      if (this.leading && Date.now() - this.lastRenew > this.options.renewDeadlineMs) {
        this.lose('could not renew the lease before the renew deadline');
        return;
      }
    }
    this.schedule();
  }

  private lose(why: string): void {
    this.leading = false;
    this.log.error({ identity: this.options.identity }, `lost leadership: ${why}`);
    this.emit('stopped');
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    const nowIso = now.toISOString().replace('Z', '000Z'); // MicroTime wants microseconds
    const durationSeconds = Math.round(this.options.leaseDurationMs / 1000);
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(Kinds.Lease, name, namespace);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      try {
        await this.client.create<Lease>(Kinds.Lease, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: nowIso, renewTime: nowIso, leaseTransitions: 0 },
        });
        return true;
      } catch (createErr) {
        if (createErr instanceof ConflictError) return false;
        throw createErr;
      }
    }

    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.acquireTime]);
    if (!this.observed || this.observed.record !== record) this.observed = { record, at: Date.now() };
    const heldByOther = Boolean(spec.holderIdentity) && spec.holderIdentity !== identity;
    const expiresAt = this.observed.at + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && expiresAt > Date.now()) return false;

    const takingOver = spec.holderIdentity !== identity;
    try {
      await this.client.patch<Lease>(Kinds.Lease, name, namespace, {
        metadata: { resourceVersion: lease.metadata.resourceVersion },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: nowIso,
          ...(takingOver ? { acquireTime: nowIso, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
        },
      });
      return true;
    } catch (err) {
      if (err instanceof ConflictError) return false;
      throw err;
    }
  }

  /** Stops campaigning; a leader hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.get<Lease>(Kinds.Lease, this.options.name, this.options.namespace);
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.client.patch(Kinds.Lease, this.options.name, this.options.namespace, {
        metadata: { resourceVersion: lease.metadata.resourceVersion },
        spec: { holderIdentity: null, leaseDurationSeconds: 1 },
      });
      this.log.info('released the leader lease');
    } catch (err) {
      this.log.warn({ err }, 'could not release the leader lease');
    }
  }
}
