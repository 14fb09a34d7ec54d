import { describe, expect, test } from 'vitest';
import { boundedName, foreignKeyName, indexName, primaryKeyName, qualifiedTable, quoteIdent, uniqueName } from './names.ts';

describe('names', () => {
  test('follow Postgres conventions', () => {
    expect(primaryKeyName('users')).toBe('users_pkey');
    expect(uniqueName('users', ['email'])).toBe('users_email_key');
    expect(foreignKeyName('posts', ['author_id'])).toBe('posts_author_id_fkey');
    expect(indexName('users', ['email', 'created_at'])).toBe('users_email_created_at_idx');
  });

  test('longer than 63 bytes are shortened deterministically with a hash, keeping the suffix', () => {
    const long = 'a'.repeat(40);
    const name = indexName(long, ['b'.repeat(30)]);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^a{40}_b{9}_[0-9a-f]{8}_idx$/);
    expect(indexName(long, ['b'.repeat(30)])).toBe(name);
    expect(indexName(long, ['c'.repeat(30)])).not.toBe(name);
    expect(boundedName(['x'.repeat(62)], 'key')).toHaveLength(63);
  });

  test('quotes identifiers and qualifies tables', () => {
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(qualifiedTable('users')).toBe('"public"."users"');
    expect(qualifiedTable('other.users')).toBe('"other"."users"');
  });
});
