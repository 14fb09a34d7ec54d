import { describe, expect, it } from 'vitest';
import { mergePatchOf } from './merge-patch.ts';

/** Applies a merge patch the way the API server does (RFC 7386), to check the diff round-trips. */
function apply(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = apply(out[k], v);
  }
  return out;
}

describe('mergePatchOf', () => {
  it('removes deleted fields with null, at any depth, and sends only what changed', () => {
    const before = { phase: 'Bootstrapping', bootstrapStage: 'ssh', steps: { ssh: 'ready', config: 'config_invalid' }, conditions: [{ type: 'Ready' }], providerId: '1' };
    const after = { phase: 'Failed', steps: { ssh: 'ready', docker: 'docker_install_failed' }, conditions: [{ type: 'Ready' }, { type: 'Stalled' }], providerId: '1' };
    const patch = mergePatchOf(before, after);
    expect(patch).toEqual({ phase: 'Failed', bootstrapStage: null, steps: { config: null, docker: 'docker_install_failed' }, conditions: [{ type: 'Ready' }, { type: 'Stalled' }] });
    expect(apply(before, patch)).toEqual(after);
  });

  it('treats undefined as absent and replaces arrays whole', () => {
    expect(mergePatchOf({ a: 1, b: [1, 2] }, { a: undefined, b: [2] })).toEqual({ a: null, b: [2] });
    expect(mergePatchOf({ a: { x: 1 } }, { a: { x: 1 } })).toEqual({});
  });
});
