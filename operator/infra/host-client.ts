import { dropletName, ownershipTag } from '../../core/infra/hosts.ts';
import { InternalError } from '../../core/errors.ts';
import { redactSecrets } from '../../core/redact.ts';
import { CloudRequestRejectedError } from './errors.ts';
import type { DeleteResult, ExternalClient, ExternalEvent, ManagedHost, Observation, ProviderKey, UpdateResult } from './external.ts';
import { assessHost, decideDeletion, decideProvisioning, type HostAssessment, type ProvisionInput, type ResizeState } from './plan.ts';
import type { CloudHost, CloudProvider, CreateHostRequest, HostAction } from './provider.ts';
import { nextResizeRecord } from './resize.ts';

/**
 * The external client of an InfraHost: a cloud host at a provider (DigitalOcean through
 * CloudProvider). It reads and changes the provider only; the decisions come from plan.ts and
 * what to record is the loop's business (operator/infra/managed.ts).
 */
export class HostClient implements ExternalClient {
  constructor(
    private readonly provider: CloudProvider,
    private readonly options: { readonly createGraceMs?: number; readonly consistencyWindowMs?: number } = {},
  ) {}

  async observe(mr: ManagedHost, key: ProviderKey, now: number): Promise<Observation> {
    const owned = await this.provider.listHostsByTag(ownershipTag(mr.uid));
    const input: ProvisionInput = {
      spec: mr.spec,
      uid: mr.uid,
      sshKeyIds: [key.id],
      owned,
      now,
      ...(mr.recordedId === undefined ? {} : { recordedId: mr.recordedId }),
      ...(mr.createPendingSince === undefined ? {} : { createPendingSince: mr.createPendingSince }),
      ...(mr.createFailure === undefined ? {} : { createFailure: mr.createFailure }),
      ...(mr.adopt === undefined ? {} : { adopt: mr.adopt }),
      ...(this.options.createGraceMs === undefined ? {} : { createGraceMs: this.options.createGraceMs }),
      ...(this.options.consistencyWindowMs === undefined ? {} : { consistencyWindowMs: this.options.consistencyWindowMs }),
    };
    let decision = decideProvisioning(input);
    if (decision.kind === 'lookupRecorded') decision = decideProvisioning({ ...input, recordedLookup: (await this.provider.getHost(decision.id)) ?? null });
    if (decision.kind === 'create') {
      // Names are not unique at the provider: a host that already has ours (without our tag) is
      // adopted under `adopt: byName`, else it blocks the create.
      const tag = ownershipTag(mr.uid);
      const named = (await this.provider.listHostsByName(dropletName(mr.spec.project, mr.spec.environment, mr.spec.host))).filter((h) => !h.tags.includes(tag));
      if (named.length > 0) decision = decideProvisioning({ ...input, named });
    }
    if (decision.kind !== 'adopt') return { decision };
    const resize = await this.#resizeState(mr);
    const assessment = assessHost({
      spec: mr.spec,
      uid: mr.uid,
      host: decision.host,
      resize,
      desiredSshKey: key.fingerprint,
      ...(mr.recordedSshKey === undefined ? {} : { recordedSshKey: mr.recordedSshKey }),
    });
    return { decision, assessment, resize };
  }

  create(request: CreateHostRequest): Promise<CloudHost> {
    return this.provider.createHost(request);
  }

  async update(mr: ManagedHost, host: CloudHost, observed: { readonly assessment: HostAssessment; readonly resize: ResizeState }): Promise<UpdateResult> {
    const { assessment, resize: state } = observed;
    const events: ExternalEvent[] = [];
    let changed = false;
    if (assessment.tagsToAdd.length > 0) {
      await this.provider.tagHost(host.id, assessment.tagsToAdd);
      changed = true;
    }
    const step = assessment.resize;
    let action: HostAction | undefined;
    switch (step.kind) {
      case 'shutdown':
        events.push({ type: 'Normal', reason: 'Resizing', message: `shutting down droplet ${host.id} to resize it to ${mr.spec.size}` });
        action = await this.provider.shutdownHost(host.id);
        changed = true;
        break;
      case 'powerOff':
        action = await this.provider.powerOffHost(host.id);
        changed = true;
        break;
      case 'resize':
        changed = true;
        try {
          action = await this.provider.resizeHost(host.id, step.size);
        } catch (err) {
          if (!(err instanceof CloudRequestRejectedError)) throw err;
          events.push({ type: 'Warning', reason: 'ResizeRefused', message: redactSecrets(err.message) });
        }
        break;
      case 'failed':
        events.push({ type: 'Warning', reason: 'ResizeRefused', message: step.message });
        break;
      case 'powerOn':
        action = await this.provider.powerOnHost(host.id);
        changed = true;
        break;
      case 'none':
      case 'wait':
        break;
    }
    return { changed, resize: nextResizeRecord(host, step, state, action), events };
  }

  async delete(mr: ManagedHost & { readonly policy: 'Delete' | 'Orphan' }, now: number): Promise<DeleteResult> {
    const input = {
      policy: mr.policy,
      uid: mr.uid,
      owned: await this.provider.listHostsByTag(ownershipTag(mr.uid)),
      now,
      ...(mr.recordedId === undefined ? {} : { recordedId: mr.recordedId }),
      ...(mr.createPendingSince === undefined ? {} : { createPendingSince: mr.createPendingSince }),
      ...(this.options.createGraceMs === undefined ? {} : { createGraceMs: this.options.createGraceMs }),
    };
    let decision = decideDeletion(input);
    if (decision.kind === 'lookup') decision = decideDeletion({ ...input, lookup: (await this.provider.getHost(decision.id)) ?? null });
    switch (decision.kind) {
      case 'release':
        return { kind: 'gone', message: decision.message };
      case 'delete':
        return { kind: 'deleting', id: decision.id, outcome: await this.provider.deleteHost(decision.id), requeueAfterMs: decision.requeueAfterMs };
      case 'wait':
        return { kind: 'wait', message: decision.message, requeueAfterMs: decision.requeueAfterMs };
      case 'blocked':
        return { kind: 'blocked', reason: decision.reason, message: decision.message, hint: decision.hint };
      case 'lookup':
        throw new InternalError('the host was looked up and still needs a lookup');
    }
  }

  async #resizeState(mr: ManagedHost): Promise<ResizeState> {
    const action = mr.resize.actionId === undefined ? undefined : await this.provider.getAction(mr.resize.actionId);
    return {
      inProgress: mr.resize.inProgress,
      ...(action === undefined ? {} : { action }),
      ...(mr.resize.failedSize === undefined ? {} : { failedSize: mr.resize.failedSize }),
    };
  }
}
