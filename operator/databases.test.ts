import { describe, expect, it } from 'vitest';
import { unsupportedPostgres } from './databases.ts';

describe('supported Postgres versions', () => {
  it('refuses a server older than 14 at connect, naming both versions', () => {
    const err = unsupportedPostgres(130012, 'main');
    expect(err?.reason).toBe('UnsupportedPostgresVersion');
    expect(err?.message).toBe('connection main: Postgres 13 is not supported; Santokit needs Postgres 14 or later');
    expect(unsupportedPostgres(140000, 'main')).toBeUndefined();
    expect(unsupportedPostgres(170002, 'main')).toBeUndefined();
  });
});
