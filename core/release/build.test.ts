import { describe, expect, it } from 'vitest';
import { buildRelease } from './build.ts';
import type { RepoSnapshot } from './source.ts';

const snapshot = (overrides: Partial<RepoSnapshot> = {}): RepoSnapshot => ({
  commit: 'a'.repeat(40),
  schemaFiles: [{ path: 'schema/app.yaml', text: 'version: 1\ntables:\n  users:\n    columns:\n      email: { type: string }\n' }],
  permissions: { path: 'config/permissions.yaml', text: 'tables:\n  users:\n    select: { roles: [admin] }\n' },
  ...overrides,
});

describe('release identity', () => {
  it('is the same for the same content and ref, whatever the formatting', () => {
    const a = buildRelease(snapshot(), { project: 'demo' });
    const b = buildRelease(snapshot({ schemaFiles: [{ path: 'schema/app.yaml', text: '# comment\nversion: 1\ntables:\n  users:\n    columns:\n      email:   { type: string }\n' }] }), { project: 'demo' });
    expect(a.id).toMatch(/^rel-[0-9a-f]{16}$/);
    expect(b.id).toBe(a.id);
  });

  it('changes with the ref, the schema, the permissions or the project', () => {
    const base = buildRelease(snapshot(), { project: 'demo' }).id;
    expect(buildRelease(snapshot({ commit: 'b'.repeat(40) }), { project: 'demo' }).id).not.toBe(base);
    expect(buildRelease(snapshot({ permissions: { path: 'config/permissions.yaml', text: 'tables: {}\n' } }), { project: 'demo' }).id).not.toBe(base);
    expect(buildRelease(snapshot(), { project: 'other' }).id).not.toBe(base);
  });

  it('refuses a commit without schema files or without a permission policy', () => {
    expect(() => buildRelease(snapshot({ schemaFiles: [] }), { project: 'demo' })).toThrow(/no schema\/\*\.yaml/);
    expect(() => buildRelease(snapshot({ permissions: undefined }), { project: 'demo' })).toThrow(/no config\/permissions\.yaml/);
  });
});
