import type { BootstrapResult, StepName } from './bootstrap.ts';

/**
 * Bootstraps in flight, one per InfraHost key. SSH readiness and installs take minutes; a
 * reconcile starts the job and requeues instead of holding a worker, and a later pass collects
 * the result. Jobs live in this process only: after a restart the next pass starts the
 * bootstrap again, which is safe because bootstrap detects before it changes anything.
 */
export interface BootstrapJob {
  /** what the job was started for (host id, address, bootstrap settings); another identity is another job */
  readonly identity: string;
  readonly startedAt: number;
  /** the step at work, once the job has started one */
  readonly stage?: StepName;
  /** set once the job has finished */
  readonly result?: BootstrapResult;
  /** set when the job threw (a bug, not a host problem: bootstrapHost reports those as results) */
  readonly error?: unknown;
}

interface Entry {
  identity: string;
  startedAt: number;
  stage?: StepName;
  controller: AbortController;
  result?: BootstrapResult;
  error?: unknown;
}

export class BootstrapJobs {
  readonly #jobs = new Map<string, Entry>();

  get(key: string): BootstrapJob | undefined {
    return this.#jobs.get(key);
  }

  /** Starts a job for `key`, aborting one with another identity. */
  start(key: string, identity: string, run: (signal: AbortSignal, onStage: (stage: StepName) => void) => Promise<BootstrapResult>, now = Date.now()): BootstrapJob {
    this.cancel(key);
    const entry: Entry = { identity, startedAt: now, controller: new AbortController() };
    this.#jobs.set(key, entry);
    run(entry.controller.signal, (stage) => {
      entry.stage = stage;
    }).then(
      (result) => {
        entry.result = result;
      },
      (error: unknown) => {
        entry.error = error;
      },
    );
    return entry;
  }

  /** Removes a finished job and returns it; undefined while it runs or when there is none. */
  take(key: string): BootstrapJob | undefined {
    const entry = this.#jobs.get(key);
    if (entry === undefined || (entry.result === undefined && entry.error === undefined)) return undefined;
    this.#jobs.delete(key);
    return entry;
  }

  /** Aborts every job (shutdown). */
  cancelAll(): void {
    for (const key of [...this.#jobs.keys()]) this.cancel(key);
  }

  cancel(key: string): void {
    const entry = this.#jobs.get(key);
    if (entry === undefined) return;
    entry.controller.abort();
    this.#jobs.delete(key);
  }
}
