import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  API_VERSION,
  Kinds,
  Labels,
  type OwnerReference,
  type Release,
  type ReleaseChunkRef,
  type ReleaseContentRef,
  type ReleaseContentSummary,
} from '../api/resources.ts';
import { UnavailableError, ValidationError } from '../errors.ts';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import type { PermissionPolicy } from '../permissions/policy.ts';
import { canonicalJson, type SchemaIR } from '../schema/ir.ts';
import type { BuiltRelease } from './build.ts';
import { releaseContentHash } from './identity.ts';

/**
 * The two storage formats of a Release and the one reader of both.
 *
 * - **Inline**: `spec.schema` and `spec.permissions` are plain JSON in the Release, readable with
 *   `kubectl get release -o yaml` and in Git diffs. Used while the spec stays under
 *   INLINE_SPEC_LIMIT_BYTES; every Release written before the chunked format is inline.
 * - **Chunked**: the canonical JSON of `{permissions, schema}` is gzip-compressed and split into
 *   pieces of at most CHUNK_BYTES, each an immutable ConfigMap `<release-id>-<n>` (`binaryData`),
 *   labelled with the release and project. The Release holds `spec.content`: the encoding, each
 *   chunk's name, SHA-256 and size, and a summary (connections, tables, policy tables).
 *
 * The release id and `spec.contentHash` are computed over the decoded content in both formats, so
 * the same repo state has the same id whichever format it is stored in. The reader checks every
 * chunk's digest, then the content hash of the decoded whole, before anything uses it: a missing
 * chunk is retryable (a GitOps tool may apply the ConfigMaps after the Release), a digest that
 * does not match is permanent.
 */

/** Above this size of the inline spec's JSON, a Release is written chunked. */
export const INLINE_SPEC_LIMIT_BYTES = 256 * 1024;
/** The largest piece of compressed content one chunk ConfigMap holds (ConfigMaps hold at most 1 MiB). */
export const CHUNK_BYTES = 512 * 1024;
/** The most chunks a Release may name (the CRD's maxItems): 32 MiB of compressed content. */
export const MAX_CHUNKS = 64;
/** Decoded content larger than this is refused (a compressed bomb, or a schema far beyond any use). */
export const MAX_DECODED_BYTES = 256 * 1024 * 1024;
export const CONTENT_ENCODING = 'gzip+json';
/** The `binaryData` key of a chunk ConfigMap. */
export const CHUNK_DATA_KEY = 'chunk';
/** The label naming the release a chunk belongs to. */
export const RELEASE_LABEL = 'santokit.io/release';

/** Condition and error reasons of the reader. */
export const ContentReason = {
  /** a chunk ConfigMap does not exist (yet): retried */
  ChunkMissing: 'ReleaseChunkMissing',
  /** a chunk's bytes do not have the SHA-256 the Release names: permanent */
  ChunkDigestMismatch: 'ReleaseChunkDigestMismatch',
  /** the decoded content does not have the Release's content hash: permanent */
  ContentHashMismatch: 'ReleaseContentHashMismatch',
  /** the Release or a chunk is not in a shape the reader knows: permanent */
  ContentMalformed: 'ReleaseContentMalformed',
} as const;

/** What a Release is about: the schema IR per connection and the compiled permission policy. */
export interface ReleaseBody {
  schema: Record<string, SchemaIR>;
  permissions: PermissionPolicy;
}

export interface ChunkConfigMap extends KubeObject {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences?: OwnerReference[]; resourceVersion?: string; uid?: string; deletionTimestamp?: string };
  immutable: true;
  binaryData: Record<string, string>;
}

type Rel = Release & KubeObject;

/** The name of chunk `n` of a release. */
export function chunkName(releaseId: string, n: number): string {
  return `${releaseId}-${n}`;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The summary a chunked Release shows: cheap facts about its content. */
export function summarize(body: ReleaseBody, jsonBytes: number): ReleaseContentSummary {
  const connections = Object.keys(body.schema)
    .sort()
    .map((name) => ({ name, tables: Object.keys(body.schema[name]?.tables ?? {}).length }));
  return { connections, policyTables: Object.keys(body.permissions?.tables ?? {}).length, jsonBytes };
}

/** The stored form of a built release: inline, or `spec.content` plus its chunk ConfigMaps. */
export type EncodedContent =
  | { format: 'inline' }
  | { format: 'chunked'; content: ReleaseContentRef; chunks: ChunkConfigMap[] };

/** The thresholds, for tests; the defaults are the format's. */
export interface EncodeOptions {
  inlineLimit?: number;
  chunkBytes?: number;
}

/**
 * Decides the format of a release and encodes it. `inlineSpecBytes` is the size of the Release's
 * spec written inline; at or under `limit` it stays inline.
 */
export function encodeReleaseContent(built: BuiltRelease, namespace: string, inlineSpecBytes: number, options: EncodeOptions = {}): EncodedContent {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  if (inlineSpecBytes <= (options.inlineLimit ?? INLINE_SPEC_LIMIT_BYTES)) return { format: 'inline' };
  const json = canonicalJson({ permissions: built.content.permissions, schema: built.content.schema });
  const jsonBytes = Buffer.byteLength(json);
  const compressed = gzipSync(json, { level: 9 });
  const count = Math.ceil(compressed.length / chunkBytes);
  if (count > MAX_CHUNKS) {
    throw new ValidationError(
      `release ${built.id} is too large to store: ${mib(compressed.length)} compressed (${mib(jsonBytes)} of schema and permissions) needs ${count} chunks of ${chunkBytes / 1024} KiB; at most ${MAX_CHUNKS} are allowed`,
      [],
      { reason: 'ReleaseTooLarge', hint: 'split the application into several projects, or remove tables it does not need' },
    );
  }
  const chunks: ChunkConfigMap[] = [];
  const refs: ReleaseChunkRef[] = [];
  for (let n = 0; n < count; n++) {
    const piece = compressed.subarray(n * chunkBytes, Math.min(compressed.length, (n + 1) * chunkBytes));
    const name = chunkName(built.id, n);
    refs.push({ name, sha256: sha256(piece), size: piece.length });
    chunks.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels: { [RELEASE_LABEL]: built.id, [Labels.project]: built.content.project } },
      immutable: true,
      binaryData: { [CHUNK_DATA_KEY]: piece.toString('base64') },
    });
  }
  return { format: 'chunked', content: { encoding: CONTENT_ENCODING, chunks: refs, summary: summarize(built.content, jsonBytes) }, chunks };
}

/** True when the Release stores its content in chunk ConfigMaps. */
export function isChunked(release: Pick<Release, 'spec'>): boolean {
  return release.spec.content !== undefined;
}

/**
 * The content of an inline Release, or undefined for a chunked one. A manifest applied with
 * `kubectl apply` (client-side) loses its null fields (a null means "delete" in the patch it
 * computes), so they are put back: a column with no default or identity, a table with no primary
 * key, an index with no custom definition.
 */
export function inlineReleaseContent(release: Pick<Release, 'spec'>): ReleaseBody | undefined {
  if (isChunked(release)) return undefined;
  const out: Record<string, SchemaIR> = {};
  for (const [connection, raw] of Object.entries((release.spec.schema ?? {}) as Record<string, SchemaIR>)) {
    const tables: Record<string, SchemaIR['tables'][string]> = {};
    for (const [name, t] of Object.entries(raw.tables ?? {})) {
      tables[name] = {
        ...t,
        columns: (t.columns ?? []).map((c) => ({ ...c, default: c.default ?? null, identity: c.identity ?? null })),
        primaryKey: t.primaryKey ?? null,
        uniques: t.uniques ?? [],
        indexes: (t.indexes ?? []).map((i) => ({ ...i, definition: i.definition ?? null })),
        foreignKeys: t.foreignKeys ?? [],
      };
    }
    out[connection] = { ...raw, tables };
  }
  return { schema: out, permissions: withRuleNulls(release.spec.permissions ?? { tables: {} }) as unknown as PermissionPolicy };
}

/** A compiled rule without a condition has `condition: null`; put back where kubectl dropped it. */
function withRuleNulls(policy: Record<string, unknown>): Record<string, unknown> {
  const tables = policy.tables;
  if (typeof tables !== 'object' || tables === null) return policy;
  const out: Record<string, unknown> = {};
  for (const [table, ops] of Object.entries(tables as Record<string, unknown>)) {
    if (typeof ops !== 'object' || ops === null) {
      out[table] = ops;
      continue;
    }
    out[table] = Object.fromEntries(
      Object.entries(ops as Record<string, unknown>).map(([op, rules]) => [
        op,
        Array.isArray(rules) ? rules.map((r: unknown) => (typeof r === 'object' && r !== null && !('condition' in r) ? { ...r, condition: null } : r)) : rules,
      ]),
    );
  }
  return { ...policy, tables: out };
}

/** A chunk as read from the cluster, its digest checked. */
export interface VerifiedChunk {
  readonly ref: ReleaseChunkRef;
  readonly object: ChunkConfigMap;
  readonly bytes: Buffer;
}

/** Checks the shape of `spec.content`; a Release written by hand may carry anything. */
function contentRefOf(release: Rel): ReleaseContentRef {
  const content = release.spec.content;
  const id = release.metadata.name;
  const malformed = (what: string) => new ValidationError(`release ${id}: spec.content ${what}`, [], { reason: ContentReason.ContentMalformed, hint: 'write the Release again with `stk apply` (or `stk apply --emit`)' });
  if (!content || content.encoding !== CONTENT_ENCODING) throw malformed(`has encoding ${JSON.stringify(content?.encoding)}; this version reads ${CONTENT_ENCODING}`);
  if (!Array.isArray(content.chunks) || content.chunks.length === 0 || content.chunks.length > MAX_CHUNKS) throw malformed(`must name 1 to ${MAX_CHUNKS} chunks`);
  content.chunks.forEach((c, n) => {
    if (c.name !== chunkName(id, n)) throw malformed(`chunk ${n} is named ${JSON.stringify(c.name)}, not ${chunkName(id, n)}`);
    if (!/^[0-9a-f]{64}$/.test(String(c.sha256))) throw malformed(`chunk ${c.name} has no valid sha256`);
  });
  if (!/^[0-9a-f]{64}$/.test(String(release.spec.contentHash))) throw malformed('needs spec.contentHash');
  return content;
}

/**
 * Reads every chunk of a chunked Release and checks its digest. A missing chunk is a retryable
 * UnavailableError (ReleaseChunkMissing); a digest that does not match a permanent
 * ValidationError (ReleaseChunkDigestMismatch).
 */
export async function readReleaseChunks(client: KubeClient, release: Rel): Promise<VerifiedChunk[]> {
  const content = contentRefOf(release);
  const id = release.metadata.name;
  const namespace = release.metadata.namespace;
  const objects = await Promise.all(content.chunks.map((c) => client.find<ChunkConfigMap>(Kinds.ConfigMap, c.name, namespace)));
  const missing = content.chunks.filter((_, n) => objects[n] === undefined).map((c) => c.name);
  if (missing.length > 0) {
    throw new UnavailableError(`release ${id} names ${content.chunks.length} chunk ConfigMap(s); ${missing.length} do not exist (yet) in namespace ${namespace}: ${missing.join(', ')}`, {
      reason: ContentReason.ChunkMissing,
      hint: `apply them (written next to the Release: <project>/releases/${id}-<n>.yaml); the operator waits for them`,
    });
  }
  return content.chunks.map((ref, n) => {
    const object = objects[n]!;
    const bytes = Buffer.from(object.binaryData?.[CHUNK_DATA_KEY] ?? '', 'base64');
    const actual = sha256(bytes);
    if (actual !== ref.sha256 || bytes.length !== ref.size) {
      throw new ValidationError(
        `release ${id}: chunk ConfigMap ${ref.name} does not hold what the release names (sha256 ${actual.slice(0, 12)}…, ${bytes.length} bytes; expected ${ref.sha256.slice(0, 12)}…, ${ref.size} bytes); the release is not used`,
        [],
        { reason: ContentReason.ChunkDigestMismatch, hint: `delete ConfigMap ${ref.name} and apply it again from the release's files (or apply the release again with stk)` },
      );
    }
    return { ref, object, bytes };
  });
}

/** Decodes verified chunks and checks the content hash of the whole against the Release's. */
export function decodeReleaseChunks(release: Rel, chunks: readonly VerifiedChunk[]): ReleaseBody {
  const id = release.metadata.name;
  const malformed = (why: string) => new ValidationError(`release ${id}: its content cannot be decoded (${why})`, [], { reason: ContentReason.ContentMalformed });
  let json: string;
  try {
    json = gunzipSync(Buffer.concat(chunks.map((c) => c.bytes)), { maxOutputLength: MAX_DECODED_BYTES }).toString('utf8');
  } catch (err) {
    throw malformed((err as Error).message);
  }
  let body: ReleaseBody;
  try {
    body = JSON.parse(json) as ReleaseBody;
  } catch (err) {
    throw malformed(`not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || typeof body.schema !== 'object' || body.schema === null || typeof body.permissions !== 'object' || body.permissions === null) {
    throw malformed('no schema or permissions');
  }
  const hash = releaseContentHash({ project: release.spec.project, ref: release.spec.ref, schema: body.schema, permissions: body.permissions });
  if (hash !== release.spec.contentHash) {
    throw new ValidationError(`release ${id}: its decoded content has hash ${hash.slice(0, 12)}…, not the spec.contentHash ${String(release.spec.contentHash).slice(0, 12)}… it names; the release is not used`, [], {
      reason: ContentReason.ContentHashMismatch,
      hint: 'apply the release again from its repository (stk apply); the Release and its chunks must come from the same build',
    });
  }
  return { schema: body.schema, permissions: body.permissions };
}

/**
 * The schema and permissions of a Release in either format: inline at once, chunked by reading
 * and verifying its ConfigMaps (see readReleaseChunks for the errors).
 */
export async function readReleaseContent(client: KubeClient, release: Rel): Promise<ReleaseBody> {
  return inlineReleaseContent(release) ?? (await readChunkedRelease(client, release)).body;
}

/**
 * A chunked Release's verified chunks and decoded content, read once however many readers of
 * one process ask at the same time (the Release, Environment and Connection reconcilers when a
 * release arrives): a decoded 10,000-table release is about 200 MB of objects.
 */
export function readChunkedRelease(client: KubeClient, release: Rel): Promise<{ chunks: VerifiedChunk[]; body: ReleaseBody }> {
  const key = `${release.metadata.namespace}/${release.metadata.name}/${release.metadata.uid ?? ''}`;
  let reading = inflight.get(key);
  if (!reading) {
    reading = readReleaseChunks(client, release)
      .then((chunks) => ({ chunks, body: decodeReleaseChunks(release, chunks) }))
      .finally(() => inflight.delete(key));
    inflight.set(key, reading);
  }
  return reading;
}

/** reads of chunked releases in progress, by namespace/name/uid (see readChunkedRelease); callers must not change what they get */
const inflight = new Map<string, Promise<{ chunks: VerifiedChunk[]; body: ReleaseBody }>>();

/**
 * Makes the Release an owner of each chunk that does not name it yet, so deleting the Release
 * lets the garbage collector delete its chunks. GitOps-written chunks cannot know the Release's
 * uid; the operator adds it when it first reads them. Only metadata changes: an immutable
 * ConfigMap's metadata stays writable. Returns the names of the chunks it changed.
 */
export async function adoptReleaseChunks(client: KubeClient, release: Rel, chunks: readonly Pick<VerifiedChunk, 'object'>[]): Promise<string[]> {
  const uid = release.metadata.uid;
  if (!uid) return [];
  const owner: OwnerReference = { apiVersion: API_VERSION, kind: 'Release', name: release.metadata.name, uid };
  const adopted: string[] = [];
  for (const { object } of chunks) {
    const owners = object.metadata.ownerReferences ?? [];
    if (owners.some((o) => o.uid === uid)) continue;
    // A merge patch replaces the whole list: keep the other owners, and fail on a concurrent change.
    await client.patch(Kinds.ConfigMap, object.metadata.name, release.metadata.namespace, {
      metadata: { resourceVersion: object.metadata.resourceVersion, ownerReferences: [...owners.filter((o) => !(o.kind === 'Release' && o.name === release.metadata.name)), owner] },
    });
    adopted.push(object.metadata.name);
  }
  return adopted;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
