import { describe, expect, it } from 'vitest';
import { OperatorMetrics } from './metrics.ts';
import { WorkQueue } from './queue.ts';

describe('OperatorMetrics', () => {
  it('exposes the standard process and runtime figures under their usual names', async () => {
    const text = await new OperatorMetrics().registry.metrics();
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(text).toMatch(new RegExp(`^${name} `, 'm'));
    }
  });

  it('exposes work-queue depth, adds, retries and durations per controller', async () => {
    const metrics = new OperatorMetrics();
    const q: WorkQueue = new WorkQueue({ baseMs: 60_000, maxMs: 60_000 }, metrics.queueObserver('Release', () => q.depth));
    q.add('ns/a');
    q.add('ns/b');
    const key = await q.get();
    q.addRateLimited(key!);
    q.done(key!);

    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^workqueue_depth\{name="Release"\} 1$/m);
    expect(text).toMatch(/^workqueue_adds_total\{name="Release"\} 2$/m);
    expect(text).toMatch(/^workqueue_retries_total\{name="Release"\} 1$/m);
    expect(text).toMatch(/^workqueue_queue_duration_seconds_count\{name="Release"\} 1$/m);
    expect(text).toMatch(/^workqueue_work_duration_seconds_count\{name="Release"\} 1$/m);
    q.shutDown();
  });
});
