import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.ts';

describe('WorkQueue', () => {
  it('collapses duplicate keys waiting in the queue', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
  });

  it('never hands out a key that is being processed; a re-add during processing queues it once afterwards', async () => {
    const q = new WorkQueue();
    q.add('k');
    const key = await q.get();
    q.add('k');
    q.add('k');
    expect(q.depth).toBe(0);
    q.done(key!);
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('k');
  });

  it('hands a key to a waiting worker directly', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
    expect(q.inFlight).toBe(1);
  });

  it('backs off exponentially with jitter per key and forgets on success', () => {
    const q = new WorkQueue({ baseMs: 100, maxMs: 1_000 });
    const delays = [q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k')];
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[2]).toBeGreaterThanOrEqual(200);
    expect(delays[4]).toBeLessThanOrEqual(1_000);
    q.forget('k');
    expect(q.addRateLimited('k')).toBeLessThanOrEqual(100);
    q.shutDown();
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
  });
});

describe('WorkQueue observer', () => {
  it('reports adds (not collapsed duplicates), retries, time waiting and time working', async () => {
    const seen = { added: 0, retried: 0, waits: [] as number[], works: [] as number[] };
    const q = new WorkQueue({ baseMs: 1, maxMs: 1 }, {
      added: () => seen.added++,
      retried: () => seen.retried++,
      started: (ms) => seen.waits.push(ms),
      finished: (ms) => seen.works.push(ms),
    });
    q.add('a');
    q.add('a');
    q.add('b');
    expect(seen.added).toBe(2);

    const a = await q.get();
    q.done(a!);
    expect(seen.waits).toHaveLength(1);
    expect(seen.works).toHaveLength(1);

    const b = await q.get();
    q.addRateLimited(b!);
    q.done(b!);
    expect(seen.retried).toBe(1);
    // The backoff re-add arrives after its delay and counts as an add.
    expect(await q.get()).toBe('b');
    expect(seen.added).toBe(3);
    expect(seen.waits.every((ms) => ms >= 0)).toBe(true);
  });
});
