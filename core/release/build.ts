import { ValidationError } from '../errors.ts';
import { compilePermissions, type PermissionPolicy } from '../permissions/policy.ts';
import { declareSchema, parseSchemaFiles } from '../schema/index.ts';
import type { SchemaIR } from '../schema/ir.ts';
import { releaseContentHash, releaseIdOf } from './identity.ts';
import type { RepoSnapshot } from './source.ts';

/** What a Release holds: the schema IR per connection and the compiled permissions at a commit. */
export interface ReleaseContent {
  project: string;
  ref: string;
  repo?: string;
  schema: Record<string, SchemaIR>;
  permissions: PermissionPolicy;
}

export interface BuiltRelease {
  id: string;
  contentHash: string;
  content: ReleaseContent;
}

export { releaseContentHash, releaseIdOf } from './identity.ts';

/**
 * Validates everything a release is made of (schema, permissions against the schema) and builds
 * its content-addressed identity. Throws a ValidationError naming file, line and column.
 */
export function buildRelease(snapshot: RepoSnapshot, options: { project: string; repo?: string }): BuiltRelease {
  if (snapshot.schemaFiles.length === 0) {
    throw new ValidationError(`commit ${snapshot.commit.slice(0, 12)} has no schema/*.yaml files`, [], { hint: 'commit your schema files, then apply that ref' });
  }
  if (!snapshot.permissions) {
    throw new ValidationError(`commit ${snapshot.commit.slice(0, 12)} has no config/permissions.yaml`, [], { hint: 'every release needs a permission policy (even an empty `tables: {}`)' });
  }
  const schema = declareSchema(parseSchemaFiles(snapshot.schemaFiles));
  const permissions = compilePermissions(snapshot.permissions, schema);
  const content: ReleaseContent = { project: options.project, ref: snapshot.commit, schema, permissions, ...(options.repo ? { repo: options.repo } : {}) };
  const contentHash = releaseContentHash(content);
  return { id: releaseIdOf(contentHash), contentHash, content };
}
