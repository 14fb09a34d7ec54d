import { describe, expect, it } from 'vitest';
import { unsupportedPostgres } from './databases.ts';

describe('supported Postgres versions', () => {
  it('refuses at connect a server of a major version the schema engine does not support, naming the versions', () => {
    const err = unsupportedPostgres(140012, 'main');
    expect(err?.reason).toBe('UnsupportedPostgresVersion');
    expect(err?.message).toBe('connection main: Postgres 14 is not supported; Santokit supports Postgres 15, 16, 17, 18');
    expect(unsupportedPostgres(190000, 'main')?.reason).toBe('UnsupportedPostgresVersion');
    expect(unsupportedPostgres(150004, 'main')).toBeUndefined();
    expect(unsupportedPostgres(180001, 'main')).toBeUndefined();
  });
});
