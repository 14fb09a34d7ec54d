import { describe, expect, it } from 'vitest';
import type { BootstrapResult } from './bootstrap.ts';
import { BootstrapJobs } from './jobs.ts';

const result: BootstrapResult = { ok: true, changed: false, steps: [], commands: [] };

describe('BootstrapJobs', () => {
  it('tracks the step at work, hands the result over once, and aborts every job on cancelAll', async () => {
    const jobs = new BootstrapJobs();
    const signals: AbortSignal[] = [];
    let finish: (r: BootstrapResult) => void = () => {};
    jobs.start('ns/a', 'id-a', (signal, onStage) => {
      signals.push(signal);
      onStage('docker');
      return new Promise((resolve) => (finish = resolve));
    });
    jobs.start('ns/b', 'id-b', (signal) => {
      signals.push(signal);
      return new Promise(() => {});
    });
    expect(jobs.get('ns/a')?.stage).toBe('docker');
    expect(jobs.take('ns/a')).toBeUndefined();
    finish(result);
    await Promise.resolve();
    expect(jobs.take('ns/a')?.result).toEqual(result);
    expect(jobs.get('ns/a')).toBeUndefined();

    jobs.cancelAll();
    expect(signals.map((s) => s.aborted)).toEqual([false, true]);
    expect(jobs.get('ns/b')).toBeUndefined();
  });
});
