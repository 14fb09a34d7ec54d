import { describe, expect, it } from 'vitest';
import { PipelineError, PipelineReason } from './pipeline.ts';

describe('pipeline failures of large schemas', () => {
  it('keep the message and drift lines they put in status bounded, saying how much was left out', () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `main: table t${i}: missing`);
    const err = new PipelineError(`the databases drifted:\n${lines.map((l) => `  - ${l}`).join('\n')}`, PipelineReason.SchemaDrift, { drift: lines });
    expect(err.message.length).toBeLessThan(17 * 1024);
    expect(err.message).toMatch(/^the databases drifted:\n {2}- main: table t0: missing\n/);
    expect(err.message).toMatch(/\n… \d+ more line\(s\)$/);
    expect(err.details.drift).toHaveLength(501);
    expect(err.details.drift!.at(-1)).toBe('… 19500 more');
    expect(err.reason).toBe('SchemaDrift');
  });

  it('leave a small failure as it is', () => {
    const err = new PipelineError('two differences:\n  - a\n  - b', PipelineReason.SchemaDrift, { drift: ['a', 'b'] });
    expect(err.message).toBe('two differences:\n  - a\n  - b');
    expect(err.details.drift).toEqual(['a', 'b']);
  });
});
