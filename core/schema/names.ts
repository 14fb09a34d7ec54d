import { sha256Hex } from './ir.ts';

/**
 * Names of the objects the engine creates. They follow Postgres' own conventions (`users_pkey`,
 * `users_email_key`, `posts_author_id_fkey`, `users_email_created_at_idx`) so a schema created
 * by hand reads the same; names longer than Postgres' 63-byte limit are shortened with a hash
 * instead of being silently truncated by the server (which would make every re-plan differ).
 */

export const MAX_IDENTIFIER_BYTES = 63;

/** The schema all managed tables live in. */
export const TABLE_SCHEMA = 'public';

export function boundedName(parts: readonly string[], suffix: string): string {
  const full = `${parts.join('_')}_${suffix}`;
  if (Buffer.byteLength(full) <= MAX_IDENTIFIER_BYTES) return full;
  const hash = sha256Hex(full).slice(0, 8);
  const keep = MAX_IDENTIFIER_BYTES - hash.length - suffix.length - 2;
  return `${full.slice(0, keep)}_${hash}_${suffix}`;
}

export const primaryKeyName = (table: string): string => boundedName([table], 'pkey');
export const uniqueName = (table: string, columns: readonly string[]): string => boundedName([table, ...columns], 'key');
export const foreignKeyName = (table: string, columns: readonly string[]): string => boundedName([table, ...columns], 'fkey');
export const indexName = (table: string, columns: readonly string[]): string => boundedName([table, ...columns], 'idx');
/** The sequence Postgres creates for an identity column. */
export const identitySequenceName = (table: string, column: string): string => boundedName([table, column], 'seq');

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A quoted, schema-qualified table name; `refTable` may already name another schema (`s.t`). */
export function qualifiedTable(name: string): string {
  const dot = name.indexOf('.');
  if (dot < 0) return `${quoteIdent(TABLE_SCHEMA)}.${quoteIdent(name)}`;
  return `${quoteIdent(name.slice(0, dot))}.${quoteIdent(name.slice(dot + 1))}`;
}
