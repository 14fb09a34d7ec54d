import { describe, expect, it } from 'vitest';
import { API_VERSION, type Release } from '../api/resources.ts';
import { UnavailableError, ValidationError } from '../errors.ts';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import { buildRelease, releaseContentHash, type BuiltRelease } from './build.ts';
import { CHUNK_BYTES, CHUNK_DATA_KEY, ContentReason, decodeReleaseChunks, encodeReleaseContent, inlineReleaseContent, INLINE_SPEC_LIMIT_BYTES, readReleaseChunks, readReleaseContent, type ChunkConfigMap, type EncodeOptions } from './content.ts';

type Rel = Release & KubeObject;

/** A schema of `n` tables with a few columns each, and a policy over every other table. */
function snapshot(n: number, commit = 'c'.repeat(40)) {
  const tables: string[] = [];
  const policy: string[] = [];
  for (let t = 0; t < n; t++) {
    tables.push(`  t${t}:`, '    columns:', `      name_${t}: { type: string, nullable: false }`, '      amount: { type: "decimal(12,2)" }', '      seen_at: { type: timestamp }', '    indexes:', '      - { columns: [amount] }');
    if (t % 2 === 0) policy.push(`  t${t}:`, '    select:', '      - roles: [reader]', '        columns: ["*"]');
  }
  return {
    commit,
    schemaFiles: [{ path: 'schema/app.yaml', text: `version: 1\ntables:\n${tables.join('\n')}\n` }],
    permissions: { path: 'config/permissions.yaml', text: `tables:\n${policy.join('\n')}\n` },
  };
}

/** The Release of a build in the format the thresholds choose, as stk writes it (cli/manifests.ts). */
function releaseManifest(built: BuiltRelease, namespace: string, _github?: undefined, options: EncodeOptions = {}): { release: Rel; chunks: ChunkConfigMap[] } {
  const head = { project: built.content.project, ref: built.content.ref, contentHash: built.contentHash };
  const metadata = { name: built.id, namespace };
  const inline: Rel = { apiVersion: API_VERSION, kind: 'Release', metadata, spec: { ...head, schema: built.content.schema, permissions: built.content.permissions as unknown as Record<string, unknown> } };
  const encoded = encodeReleaseContent(built, namespace, Buffer.byteLength(JSON.stringify(inline.spec)), options);
  if (encoded.format === 'inline') return { release: inline, chunks: [] };
  return { release: { apiVersion: API_VERSION, kind: 'Release', metadata, spec: { ...head, content: encoded.content } }, chunks: encoded.chunks };
}

/** The API server as far as the reader uses it: `find` of ConfigMaps by name. */
function clusterOf(chunks: ChunkConfigMap[]): KubeClient {
  const byName = new Map(chunks.map((c) => [c.metadata.name, c]));
  return { find: async (_kind: unknown, name: string) => byName.get(name) } as unknown as KubeClient;
}

/** As the API server stores it: a uid, a namespace. */
const stored = (release: Rel): Rel => ({ ...release, metadata: { ...release.metadata, uid: 'uid-1' } });

describe('release format', () => {
  const built = buildRelease(snapshot(40), { project: 'demo' });
  const inline = releaseManifest(built, 'stk-demo');
  // Small thresholds give a small schema several chunks.
  const chunked = releaseManifest(built, 'stk-demo', undefined, { inlineLimit: 0, chunkBytes: 256 });

  it('keeps a small release inline, exactly as before: schema and permissions in the spec, no chunks', () => {
    expect(inline.chunks).toEqual([]);
    expect(inline.release.spec.schema).toBe(built.content.schema);
    expect(inline.release.spec.permissions).toBe(built.content.permissions);
    expect(inline.release.spec.content).toBeUndefined();
    expect(Buffer.byteLength(JSON.stringify(inline.release.spec))).toBeLessThanOrEqual(INLINE_SPEC_LIMIT_BYTES);
  });

  it('chunks a large release: immutable ConfigMaps <id>-<n> in order, labelled, each at most the chunk size, named with digest and size', () => {
    const { release, chunks } = chunked;
    expect(release.spec.schema).toBeUndefined();
    expect(release.spec.permissions).toBeUndefined();
    expect(chunks.length).toBeGreaterThan(1);
    expect(release.spec.content!.encoding).toBe('gzip+json');
    expect(release.spec.content!.chunks.map((c) => c.name)).toEqual(chunks.map((_, n) => `${built.id}-${n}`));
    for (const [n, chunk] of chunks.entries()) {
      const bytes = Buffer.from(chunk.binaryData[CHUNK_DATA_KEY]!, 'base64');
      expect(chunk.immutable).toBe(true);
      expect(chunk.metadata).toMatchObject({ name: `${built.id}-${n}`, namespace: 'stk-demo', labels: { 'santokit.io/release': built.id, 'santokit.io/project': 'demo' } });
      expect(bytes.length).toBeLessThanOrEqual(256);
      expect(release.spec.content!.chunks[n]!.size).toBe(bytes.length);
    }
    expect(release.spec.content!.summary).toMatchObject({ connections: [{ name: 'main', tables: 40 }], policyTables: 20 });
  });

  it('the same build has the same id, content hash and bytes in both formats; encoding twice gives the same bytes', () => {
    expect(chunked.release.metadata.name).toBe(inline.release.metadata.name);
    expect(chunked.release.spec.contentHash).toBe(inline.release.spec.contentHash);
    expect(releaseManifest(built, 'stk-demo', undefined, { inlineLimit: 0, chunkBytes: 256 })).toEqual(chunked);
  });

  it('decodes a chunked release to exactly the content an inline one gives', async () => {
    const fromChunks = await readReleaseContent(clusterOf(chunked.chunks), stored(chunked.release));
    const fromInline = await readReleaseContent(clusterOf([]), stored(inline.release));
    expect(fromChunks).toEqual({ schema: built.content.schema, permissions: built.content.permissions });
    expect(fromChunks).toEqual(fromInline);
    expect(releaseContentHash({ project: 'demo', ref: built.content.ref, ...fromChunks })).toBe(built.contentHash);
  });

  it('puts back the nulls a client-side kubectl apply drops from an inline release', () => {
    const withoutNulls = JSON.parse(JSON.stringify(inline.release.spec, (_k, v: unknown) => (v === null ? undefined : v))) as Rel['spec'];
    expect(inlineReleaseContent({ spec: withoutNulls })).toEqual({ schema: built.content.schema, permissions: built.content.permissions });
  });

  it('a missing chunk is retryable and names it', async () => {
    const err = await readReleaseChunks(clusterOf(chunked.chunks.slice(1)), stored(chunked.release)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ reason: ContentReason.ChunkMissing, retryable: true });
    expect((err as Error).message).toContain(`${built.id}-0`);
  });

  it('a chunk with other bytes is refused for good, before anything is decoded', async () => {
    const tampered = structuredClone(chunked.chunks);
    const bytes = Buffer.from(tampered[1]!.binaryData[CHUNK_DATA_KEY]!, 'base64');
    bytes[10] = bytes[10]! ^ 0xff;
    tampered[1]!.binaryData[CHUNK_DATA_KEY] = bytes.toString('base64');
    const err = await readReleaseContent(clusterOf(tampered), stored(chunked.release)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ reason: ContentReason.ChunkDigestMismatch, retryable: false });
    expect((err as Error).message).toContain(`${built.id}-1`);
  });

  it('chunks whose digests match but whose content is not what the content hash names are refused', async () => {
    // Another build's chunks, with the digests rewritten to match: only the content hash can tell.
    const other = releaseManifest(buildRelease(snapshot(41), { project: 'demo' }), 'stk-demo', undefined, { inlineLimit: 0, chunkBytes: 1 << 20 });
    const forged: Rel = stored({ ...chunked.release, spec: { ...chunked.release.spec, content: { ...other.release.spec.content!, chunks: other.release.spec.content!.chunks.map((c, n) => ({ ...c, name: `${built.id}-${n}` })) } } });
    const renamed = other.chunks.map((c, n) => ({ ...c, metadata: { ...c.metadata, name: `${built.id}-${n}` } }));
    const chunks = await readReleaseChunks(clusterOf(renamed), forged);
    expect(() => decodeReleaseChunks(forged, chunks)).toThrow(expect.objectContaining({ reason: ContentReason.ContentHashMismatch }));
  });

  it('a content ref naming chunks of another release is malformed', async () => {
    const wrong: Rel = stored({ ...chunked.release, spec: { ...chunked.release.spec, content: { ...chunked.release.spec.content!, chunks: [{ ...chunked.release.spec.content!.chunks[0]!, name: 'santokit-sealing-cert' }] } } });
    await expect(readReleaseContent(clusterOf(chunked.chunks), wrong)).rejects.toMatchObject({ reason: ContentReason.ContentMalformed });
  });

  it('the real chunk size stays under the ConfigMap limit with room for metadata', () => {
    expect(CHUNK_BYTES).toBeLessThanOrEqual(1024 * 1024 - 64 * 1024);
  });
});
