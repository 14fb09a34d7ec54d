import { Kinds, type InfraHost } from '../../core/api/resources.ts';
import { formatRun, type RunRecord } from '../../core/infra/run.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import type { RecordStore } from './managed.ts';
import { ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING, ANNOTATION_PROVIDER_ID, formatCreateFailure, type CreateFailure } from './plan.ts';
import { formatResize, type ResizeRecord } from './resize.ts';
import { ANNOTATION_RESIZE, ANNOTATION_RUN, ANNOTATION_SSH_KEY } from '../../core/infra/run.ts';

type Obj = InfraHost & KubeObject;

/**
 * The managed loop's records as annotations of the InfraHost (they survive a crash; status may be
 * rebuilt). The create-pending marker is written with the resourceVersion the pass read: if
 * anything changed since (another pass recorded an id), the write fails and the next pass reads
 * again. `onRunWritten` learns the run annotation written along with a host's id.
 */
export class KubeRecordStore implements RecordStore {
  constructor(
    private readonly client: KubeClient,
    private readonly obj: Obj,
    private readonly onRunWritten: (text: string) => void,
  ) {}

  async markCreatePending(since: string): Promise<void> {
    await this.#patch({ resourceVersion: this.obj.metadata.resourceVersion, annotations: { [ANNOTATION_CREATE_PENDING]: since } });
  }

  async clearCreatePending(): Promise<void> {
    await this.#patch({ annotations: { [ANNOTATION_CREATE_PENDING]: null, [ANNOTATION_CREATE_FAILED]: null } });
  }

  async recordCreateFailure(failure: CreateFailure): Promise<void> {
    await this.#patch({ annotations: { [ANNOTATION_CREATE_FAILED]: formatCreateFailure(failure) } });
  }

  async recordHost(id: string, sshKeyFingerprint: string | undefined, run: RunRecord): Promise<void> {
    const text = formatRun(run);
    await this.#patch({
      annotations: {
        [ANNOTATION_PROVIDER_ID]: id,
        [ANNOTATION_CREATE_PENDING]: null,
        [ANNOTATION_CREATE_FAILED]: null,
        ...(sshKeyFingerprint === undefined ? {} : { [ANNOTATION_SSH_KEY]: sshKeyFingerprint }),
        [ANNOTATION_RUN]: text,
      },
    });
    this.onRunWritten(text);
  }

  async recordResize(record: ResizeRecord): Promise<void> {
    await this.#patch({ annotations: { [ANNOTATION_RESIZE]: formatResize(record) } });
  }

  async #patch(metadata: { resourceVersion?: string | undefined; annotations: Record<string, string | null> }): Promise<void> {
    await this.client.patch(Kinds.InfraHost, this.obj.metadata.name, this.obj.metadata.namespace, { metadata });
  }
}
