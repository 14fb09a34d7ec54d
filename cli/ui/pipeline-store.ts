import type { PipelineStep } from '../../core/api/resources.ts';

/** One row of the live pipeline: a step of one connection (or of the whole env). */
export interface PipelineRow {
  key: string;
  label: string;
  state: PipelineStep['state'] | 'Waiting';
  reason?: string;
  message?: string;
  /** ms from the first sight of the step (or the start) until it finished, or until now */
  elapsedMs: number;
}

const finishedStates = new Set(['Succeeded', 'Failed', 'Skipped']);

/**
 * Turns successive `Environment.status.steps` into rows: finished rows are appended once, in the
 * order they finished (they go into Ink's `<Static>`), live rows are recomputed each update.
 */
export class PipelineStore {
  private finished: PipelineRow[] = [];
  private live: PipelineRow[] = [];
  private readonly firstSeen = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private snapshot: { finished: PipelineRow[]; live: PipelineRow[]; outcome?: string | undefined };
  private outcome: string | undefined;

  constructor(private readonly startedAt: number, private readonly clock: () => number = Date.now) {
    this.snapshot = { finished: [], live: [] };
  }

  update(steps: readonly PipelineStep[]): void {
    const now = this.clock();
    const done = new Set(this.finished.map((r) => r.key));
    const live: PipelineRow[] = [];
    for (const s of steps) {
      const key = `${s.name}/${s.connection ?? ''}`;
      if (!this.firstSeen.has(key)) this.firstSeen.set(key, now);
      const row: PipelineRow = {
        key,
        label: s.connection ? `${s.name} ${s.connection}` : s.name,
        state: s.state,
        ...(s.reason ? { reason: s.reason } : {}),
        ...(s.message ? { message: s.message } : {}),
        elapsedMs: now - (s.state === 'Pending' ? now : (this.firstSeen.get(key) ?? this.startedAt)),
      };
      if (finishedStates.has(s.state)) {
        if (!done.has(key)) {
          this.finished.push({ ...row, elapsedMs: now - this.startedAt });
          done.add(key);
        }
      } else live.push(row);
    }
    this.live = live;
    this.publish();
  }

  /** Marks the end: a one-line outcome shown under the steps. */
  finish(outcome: string): void {
    this.outcome = outcome;
    this.live = [];
    this.publish();
  }

  get rows(): { finished: PipelineRow[]; live: PipelineRow[]; outcome?: string | undefined } {
    return this.snapshot;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): { finished: PipelineRow[]; live: PipelineRow[]; outcome?: string | undefined } => this.snapshot;

  private publish(): void {
    this.snapshot = { finished: [...this.finished], live: this.live, outcome: this.outcome };
    for (const l of this.listeners) l();
  }
}

/** `1.2s`, `850ms`, `2m03s`. */
export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
