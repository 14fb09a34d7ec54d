import type { PermissionPolicy } from '../permissions/policy.ts';
import { canonicalJson, sha256Hex, type SchemaIR } from '../schema/ir.ts';

/*
 * Release identity, apart from the schema and permission compilers (build.ts) so that reading a
 * release (content.ts) stays light for stk's start-up.
 */

/** SHA-256 over the canonical content and ref: the same input always gives the same hash. */
export function releaseContentHash(content: { project: string; ref: string; schema: Record<string, SchemaIR>; permissions: PermissionPolicy }): string {
  return sha256Hex(canonicalJson({ project: content.project, ref: content.ref, schema: content.schema, permissions: content.permissions }));
}

/** The release id derived from its content hash: `rel-` and 16 hex digits (a DNS-1123 name). */
export function releaseIdOf(contentHash: string): string {
  return `rel-${contentHash.slice(0, 16)}`;
}
