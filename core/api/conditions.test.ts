import { describe, expect, it } from 'vitest';
import { markReady, markReconciling, markStalled, setCondition } from './conditions.ts';

describe('conditions', () => {
  it('keeps lastTransitionTime when only the reason or message changes', () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, 1, t0);
    const second = setCondition(first, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, 2, new Date('2026-01-02T00:00:00Z'));
    expect(second[0]).toMatchObject({ reason: 'B', observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' });
  });

  it('moves lastTransitionTime when the status changes', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, 1, new Date('2026-01-01T00:00:00Z'));
    const second = setCondition(first, { type: 'Ready', status: 'True', reason: 'A', message: 'a' }, 1, new Date('2026-01-02T00:00:00Z'));
    expect(second[0]?.lastTransitionTime).toBe('2026-01-02T00:00:00Z');
  });

  it('Ready clears the abnormal-true conditions; Stalled replaces Reconciling', () => {
    const reconciling = markReconciling([], 'Progressing', 'working', 3);
    expect(reconciling.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'Unknown'],
      ['Reconciling', 'True'],
    ]);
    const stalled = markStalled(reconciling, 'Bad', 'fix it', 3);
    expect(stalled.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'False'],
      ['Stalled', 'True'],
    ]);
    expect(markReady(stalled, 'Succeeded', 'ok', 3).map((c) => c.type)).toEqual(['Ready']);
  });
});
