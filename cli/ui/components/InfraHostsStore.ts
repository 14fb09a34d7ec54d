import type { InfraHost } from '../../../core/api/resources.ts';
import { ANNOTATION_RUN, hostOutcome, parseRun } from '../../../core/infra/run.ts';

/**
 * The live rows of `stk infra up` on a terminal, as plain data: one row per host with its stages
 * (provisioning → ssh → docker → tailscale → ready), read from the InfraHost the command watches.
 * No React here: the component in InfraHosts.tsx only draws what this store publishes.
 */

export const STAGES = ['provisioning', 'ssh', 'docker', 'tailscale', 'ready'] as const;
export type StageName = (typeof STAGES)[number];
export type StageState = 'pending' | 'running' | 'done' | 'skipped' | 'failed';

export interface HostStage {
  readonly name: StageName;
  readonly state: StageState;
}

/** Where one host is in this run of `stk infra up`. */
export interface HostProgress {
  /** the InfraHost's name */
  readonly key: string;
  readonly stages: readonly HostStage[];
  /** set when the run ended without the host being ready: a result code and what happened */
  readonly failure?: { readonly code: string; readonly message: string };
  /** the operator answered this run (or the command stopped waiting): the row is final */
  readonly settled: boolean;
}

/** The run a progress reading belongs to: the request id stk wrote and the generation it applied. */
export interface RunIdentity {
  readonly requestId: string;
  readonly generation: number;
}

/** `status.steps` key of each bootstrap stage. */
const STEP_OF: Partial<Record<StageName, string>> = { ssh: 'ssh', docker: 'docker', tailscale: 'network' };
const OK_CODES: ReadonlySet<string> = new Set(['ready', 'present', 'installed', 'started', 'joined']);

/**
 * Reads one InfraHost as progress of run `run`. Until the operator has taken the run up (its run
 * record names the request), nothing in the status is about this run: the host is provisioning.
 * `status.steps` belong to the run only once the run record says bootstrap ran in it.
 */
export function hostProgress(obj: InfraHost & { metadata: { name: string; annotations?: Record<string, string> } }, run: RunIdentity): HostProgress {
  const record = parseRun(obj.metadata.annotations?.[ANNOTATION_RUN]);
  const ours = record !== undefined && record.request === run.requestId && record.generation >= run.generation;
  const status = ours ? obj.status : undefined;
  const steps = ours && record.bootstrap !== undefined ? (status?.steps ?? {}) : {};
  const settled = ours && record.handled === true;
  const provisioned = status?.conditions?.find((c) => c.type === 'Provisioned')?.status === 'True';
  const switchedOff: Partial<Record<StageName, boolean>> = {
    docker: obj.spec.bootstrap?.docker?.enabled === false,
    tailscale: obj.spec.bootstrap?.tailscale === undefined,
  };

  const states = new Map<StageName, StageState>();
  states.set('provisioning', provisioned ? 'done' : 'running');
  for (const stage of ['ssh', 'docker', 'tailscale'] as const) {
    const code = steps[STEP_OF[stage] ?? ''];
    states.set(
      stage,
      code === undefined ? (switchedOff[stage] ? 'skipped' : 'pending')
      : code === 'disabled' ? 'skipped'
      : OK_CODES.has(code) ? 'done'
      : code === 'not_run' ? 'pending'
      : 'failed',
    );
  }
  states.set('ready', 'pending');

  if (!settled) {
    // While the bootstrap runs, the operator names the step at work (`status.bootstrapStage`);
    // the steps before it passed. Their result codes land in `status.steps` when the run ends.
    const at = status?.bootstrapStage;
    if (provisioned && at !== undefined) {
      for (const stage of ['ssh', 'docker', 'tailscale'] as const) {
        if (STEP_OF[stage] === at) {
          states.set(stage, 'running');
          break;
        }
        if (states.get(stage) === 'pending') states.set(stage, 'done');
      }
    } else if (provisioned && states.get('ssh') === 'pending') {
      states.set('ssh', 'running');
    }
    return { key: obj.metadata.name, stages: stagesOf(states), settled: false };
  }

  const outcome = hostOutcome(status);
  if (outcome.kind === 'ready') {
    states.set('ready', 'done');
    return { key: obj.metadata.name, stages: stagesOf(states), settled: true };
  }
  const failure =
    outcome.kind === 'bootstrapFailed' ? { code: outcome.code, message: withoutPrefix(outcome.message, outcome.code) }
    : outcome.kind === 'configInvalid' ? { code: 'config_invalid', message: withoutPrefix(outcome.message, 'config_invalid') }
    : { code: outcome.reason, message: outcome.message };
  if (![...states.values()].includes('failed')) {
    const at = STAGES.find((s) => states.get(s) === 'running' || states.get(s) === 'pending');
    if (at !== undefined) states.set(at, 'failed');
  }
  return { key: obj.metadata.name, stages: stagesOf(states), failure, settled: true };
}

/** The progress of a host stk stopped waiting for: the stage at work is marked failed. */
export function gaveUp(progress: HostProgress | undefined, key: string, failure: { code: string; message: string }): HostProgress {
  const stages = progress?.stages ?? STAGES.map((name) => ({ name, state: name === 'provisioning' ? ('running' as const) : ('pending' as const) }));
  let marked = false;
  const next = stages.map((s) => {
    if (marked || (s.state !== 'running' && s.state !== 'pending')) return s;
    marked = true;
    return { name: s.name, state: 'failed' as const };
  });
  return { key, stages: next, failure, settled: true };
}

function stagesOf(states: Map<StageName, StageState>): HostStage[] {
  return STAGES.map((name) => ({ name, state: states.get(name) ?? 'pending' }));
}

/** Conditions carry `code: message`; the row shows the code once. */
function withoutPrefix(message: string, code: string): string {
  return message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
}

// ---------------------------------------------------------------------------------------------

/** One drawn row: the progress with its label and the time it took (or has taken so far). */
export interface HostRow extends HostProgress {
  readonly label: string;
  /** for finished rows: ms from the start until the host settled; live rows count from `startedAt` */
  readonly elapsedMs: number;
}

export interface InfraHostsSnapshot {
  /** settled rows, in the order they settled (Ink's `<Static>`: printed once, never redrawn) */
  readonly finished: readonly HostRow[];
  /** rows still at work, in label order */
  readonly live: readonly HostRow[];
  /** width of the widest label, so stages line up across rows */
  readonly labelWidth: number;
  readonly done: boolean;
}

/** Turns successive progress readings of a run's hosts into rows. */
export class InfraHostsStore {
  private readonly hosts: ReadonlyArray<{ key: string; label: string }>;
  private readonly progress = new Map<string, HostProgress>();
  private readonly finished: HostRow[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly labelWidth: number;
  private done = false;
  private snapshot: InfraHostsSnapshot;

  constructor(
    hosts: ReadonlyArray<{ key: string; label: string }>,
    readonly startedAt: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.hosts = [...hosts].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    this.labelWidth = Math.max(0, ...hosts.map((h) => h.label.length));
    this.snapshot = this.build();
  }

  /** The latest reading of one host; a settled host is final and later readings are ignored. */
  update(progress: HostProgress): void {
    if (this.finished.some((r) => r.key === progress.key)) return;
    const host = this.hosts.find((h) => h.key === progress.key);
    if (host === undefined) return;
    this.progress.set(progress.key, progress);
    if (progress.settled) this.finished.push({ ...progress, label: host.label, elapsedMs: this.clock() - this.startedAt });
    this.publish();
  }

  /** The progress last seen for a host. */
  last(key: string): HostProgress | undefined {
    return this.progress.get(key);
  }

  /** No more readings come: live rows stop. */
  finish(): void {
    this.done = true;
    this.publish();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): InfraHostsSnapshot => this.snapshot;

  private build(): InfraHostsSnapshot {
    const settled = new Set(this.finished.map((r) => r.key));
    const live = this.done
      ? []
      : this.hosts
          .filter((h) => !settled.has(h.key))
          .map((h) => ({ ...(this.progress.get(h.key) ?? initialProgress(h.key)), label: h.label, elapsedMs: 0 }));
    return { finished: [...this.finished], live, labelWidth: this.labelWidth, done: this.done };
  }

  private publish(): void {
    this.snapshot = this.build();
    for (const l of this.listeners) l();
  }
}

function initialProgress(key: string): HostProgress {
  return { key, stages: STAGES.map((name) => ({ name, state: name === 'provisioning' ? 'running' : 'pending' })), settled: false };
}
