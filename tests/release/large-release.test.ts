import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseManifest } from '../../cli/manifests.ts';
import { Kinds, type Environment, type KindInfo, type Release } from '../../core/api/resources.ts';
import { ObjectTooLargeError } from '../../core/errors.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { buildRelease, type BuiltRelease } from '../../core/release/build.ts';
import { CHUNK_DATA_KEY, type ChunkConfigMap } from '../../core/release/content.ts';
import { call, createApiKey, createDataplaneProject, startBridge, waitServable, type BridgeProcess } from '../dataplane/support.ts';
import { adminClient, eventually, expectExit, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess } from '../support/cluster.ts';
import { createTestRepo } from '../support/git-repo.ts';
import { largeSchema } from '../support/large-schema.ts';

/**
 * Large releases (issue 17): a schema whose Release would not fit in one object is stored chunked
 * (spec.content and immutable ConfigMaps) and goes through the same pipeline; the operator owns,
 * verifies and waits for chunks; the cluster's size refusals reach the user as ObjectTooLargeError.
 * Real API server, controller manager (garbage collection), Postgres, stk, operator and data plane.
 */

const client = await adminClient();
type Rel = Release & KubeObject;
type Env = Environment & KubeObject;
type Cm = KubeObject & { binaryData?: Record<string, string>; data?: Record<string, string>; metadata: KubeObject['metadata'] & { ownerReferences?: Array<{ kind: string; name: string; uid: string }> } };

/** A chunked release of `tables` tables built in the test, as a GitOps tool would find it in Git. */
function chunkedRelease(project: string, tables: number, commit = uniqueName('').replace(/[^0-9a-f]/g, '').padEnd(40, 'a').slice(0, 40)): { built: BuiltRelease; release: Rel; chunks: ChunkConfigMap[] } {
  const large = largeSchema(tables, { seed: tables });
  const built = buildRelease(
    { commit, schemaFiles: Object.entries(large.files).map(([path, text]) => ({ path, text })), permissions: { path: 'config/permissions.yaml', text: large.permissions } },
    { project },
  );
  const { release, chunks } = releaseManifest(built, `stk-${project}`);
  expect(release.spec.content, 'the fixture must be large enough to be chunked').toBeDefined();
  return { built, release, chunks };
}

async function pointEnvironment(namespace: string, env: string, release: string): Promise<void> {
  await client.patch(Kinds.Environment, env, namespace, { spec: { release } });
}

describe('large releases', { timeout: 180_000 }, () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess | undefined;
  const drops: Array<() => Promise<void>> = [];
  /** projects to delete afterwards: chunked releases left in the cluster would be read by every later operator */
  const projects: string[] = [];

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-large') });
    await waitForOperatorReady(operator);
  });

  afterAll(async () => {
    await bridge?.stop();
    // Deleted while the operator runs (it lets their Releases go): no chunked Release of these
    // tests is left for the operator of a later file to read.
    const namespaces = new Set(projects.map((p) => `stk-${p}`));
    for (const project of projects.splice(0)) await client.delete(Kinds.Project, project);
    const left = async () => [...(await client.list(Kinds.Release)).items, ...(await client.list(Kinds.Environment)).items].filter((o) => namespaces.has(o.metadata.namespace ?? ''));
    await eventually(async () => ((await left()).length === 0 ? true : undefined), { timeoutMs: 90_000, what: 'the test projects\' releases to be deleted' }).catch(() => undefined);
    await operator?.stop();
    for (const drop of drops.splice(0)) await drop();
  });

  it('a 1,000-table schema is released chunked through stk apply, summarized on the Release, and served', async () => {
    const p = await createDataplaneProject('large', ['dev']);
    drops.push(() => p.drop());
    projects.push(p.project);
    const large = largeSchema(1000);
    const id = await p.apply('dev', { ...large.files, 'config/permissions.yaml': large.permissions }, ['--timeout', '150']);

    const release = await client.get<Rel>(Kinds.Release, id, p.namespace);
    expect(release.spec.schema).toBeUndefined();
    expect(release.spec.content!.summary).toMatchObject({ connections: [{ name: 'main', tables: 1000 }], policyTables: 500 });
    const yaml = await kubectl(['get', 'release', id, '-n', p.namespace, '-o', 'yaml']);
    expectExit(yaml);
    expect(yaml.stdout).toMatch(/summary:\n\s+connections:\n\s+- name: main\n\s+tables: 1000\n/);
    expect(yaml.stdout.length).toBeLessThan(4096);

    // The chunks: immutable, labelled, owned by the Release (stk wrote them before it).
    const labelled = await client.list<Cm>(Kinds.ConfigMap, { namespace: p.namespace, labelSelector: `santokit.io/release=${id}` });
    // (the permission snapshot santokit-permissions-<id> carries the label too)
    const items = labelled.items.filter((c) => c.metadata.name.startsWith(`${id}-`));
    expect(items.map((c) => c.metadata.name).sort()).toEqual(release.spec.content!.chunks.map((c) => c.name).sort());
    for (const chunk of items) {
      expect(chunk.immutable).toBe(true);
      expect(chunk.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Release', name: id, uid: release.metadata.uid })]);
    }

    // Every table is in the database, and `stk release show` reads the tables back from the chunks.
    const [{ n }] = (await p.dbs.dev!.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`) as unknown as [{ n: number }];
    expect(n).toBe(1000);
    const show = await stk(['release', 'show', id, '--project', p.project, '--json']);
    expectExit(show);
    const shown = JSON.parse(show.stdout) as { tables: { main: string[] }; storage: { format: string; chunks: number } };
    expect(shown.tables.main).toHaveLength(1000);
    expect(shown.storage).toMatchObject({ format: 'chunked', chunks: release.spec.content!.chunks.length });

    // The data plane serves it: a select on the last table, which the policy lets readers see.
    bridge = await startBridge({ logLevel: 'info' });
    const table = large.tables[998]!;
    const key = await createApiKey(p.project, 'dev', ['reader'], uniqueName('key'), bridge);
    await waitServable(bridge, key.apiKey, `db/${table}/select`);
    const selected = await call(bridge, key.apiKey, `db/${table}/select`, { limit: 1 });
    expect(selected.status, JSON.stringify(selected.body)).toBe(200);
    expect(selected.body.data).toEqual([]);
    expect((await call(bridge, key.apiKey, `db/${large.tables[999]!}/select`, { limit: 1 })).status).toBe(403);
  });

  it('a dry run leaves nothing behind; chunks applied after the Release (GitOps order): the operator waits, names why, then applies; it owns the chunks', async () => {
    const p = await createDataplaneProject('lrorder', ['dev']);
    drops.push(() => p.drop());
    projects.push(p.project);
    const large = largeSchema(120, { seed: 120 });
    const ref = await p.repo.commit({ ...large.files, 'config/permissions.yaml': large.permissions }, 'large');

    // stk apply --dry-run plans it, then deletes the Release, and its chunks go with it.
    const dry = await stk(['apply', '--project', p.project, '--env', 'dev', '--ref', ref, '--repo', p.repo.dir, '--dry-run']);
    expectExit(dry);
    expect(dry.stdout).toMatch(/^plan main: \d+ step\(s\)$/m);
    const dryId = /dry run: release (rel-[0-9a-f]{16})/.exec(dry.stdout)![1]!;
    await eventually(async () => {
      const left = await client.list<Cm>(Kinds.ConfigMap, { namespace: p.namespace, labelSelector: `santokit.io/release=${dryId}` });
      return left.items.length === 0 && !(await client.find(Kinds.Release, dryId, p.namespace)) ? true : undefined;
    }, { what: `release ${dryId} and its chunks to be gone after the dry run` });

    // The same ref as a GitOps tool syncs it: the Release first, its chunks later.
    const { release, chunks } = chunkedRelease(p.project, 120, ref);
    const id = release.metadata.name;
    expect(id).toBe(dryId);
    await client.create(Kinds.Release, release);
    await pointEnvironment(p.namespace, 'dev', id);

    const waiting = await eventually(async () => {
      const env = await client.get<Env>(Kinds.Environment, 'dev', p.namespace);
      return env.status?.lastRequest?.release === id && env.status.lastRequest.reason === 'ReleaseChunkMissing' ? env : undefined;
    }, { what: 'the environment to wait for the missing chunks' });
    expect(waiting.status?.lastRequest).toMatchObject({ outcome: 'Failed', retryable: true });
    expect(waiting.status?.lastRequest?.message).toContain(`${id}-0`);
    expect(waiting.status?.conditions?.find((c) => c.type === 'Stalled')?.status ?? 'False').not.toBe('True');
    await eventually(async () => ((await client.get<Rel>(Kinds.Release, id, p.namespace)).status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'ReleaseChunkMissing' ? true : undefined), {
      what: 'the Release to say its chunks are missing',
    });

    for (const chunk of chunks) await client.create(Kinds.ConfigMap, chunk);
    await eventually(async () => ((await client.get<Env>(Kinds.Environment, 'dev', p.namespace)).status?.currentRelease === id ? true : undefined), { timeoutMs: 90_000, what: `dev to serve ${id}` });
    const [{ n }] = (await p.dbs.dev!.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`) as unknown as [{ n: number }];
    expect(n).toBe(120);
    const uid = (await client.get<Rel>(Kinds.Release, id, p.namespace)).metadata.uid;
    await eventually(async () => {
      const found = await Promise.all(chunks.map((c) => client.get<Cm>(Kinds.ConfigMap, c.metadata.name, p.namespace)));
      return found.every((c) => c.metadata.ownerReferences?.some((o) => o.uid === uid)) ? true : undefined;
    }, { what: 'the operator to make the Release own its chunks' });
  });

  it('a chunk replaced with other bytes is refused with the named reason; the Release says so too', async () => {
    const project = uniqueName('lrtamper');
    projects.push(project);
    const namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    expectExit(await stk(['env', 'create', '--project', project, 'dev']));
    const { release, chunks } = chunkedRelease(project, 110);
    const id = release.metadata.name;
    const first = chunks[0]!;
    await client.create(Kinds.ConfigMap, first);
    // An immutable ConfigMap's data cannot change...
    await expect(client.patch(Kinds.ConfigMap, first.metadata.name, namespace, { binaryData: { [CHUNK_DATA_KEY]: Buffer.from('other').toString('base64') } })).rejects.toMatchObject({ reason: 'Invalid' });
    // ...but it can be deleted and made again with other bytes.
    await client.delete(Kinds.ConfigMap, first.metadata.name, namespace);
    await eventually(async () => ((await client.find(Kinds.ConfigMap, first.metadata.name, namespace)) ? undefined : true), { what: 'the chunk to be gone' });
    const bytes = Buffer.from(first.binaryData[CHUNK_DATA_KEY]!, 'base64');
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x01;
    await client.create(Kinds.ConfigMap, { ...first, binaryData: { [CHUNK_DATA_KEY]: bytes.toString('base64') } });
    for (const chunk of chunks.slice(1)) await client.create(Kinds.ConfigMap, chunk);
    await client.create(Kinds.Release, release);
    await pointEnvironment(namespace, 'dev', id);

    const env = await eventually(async () => {
      const e = await client.get<Env>(Kinds.Environment, 'dev', namespace);
      return e.status?.lastRequest?.release === id ? e : undefined;
    }, { what: 'the environment to decide on the tampered release' });
    expect(env.status?.lastRequest).toMatchObject({ outcome: 'Failed', reason: 'ReleaseChunkDigestMismatch', retryable: false });
    expect(env.status?.lastRequest?.message).toContain(first.metadata.name);
    expect(env.status?.currentRelease).toBeUndefined();
    await eventually(async () => ((await client.get<Env>(Kinds.Environment, 'dev', namespace)).status?.conditions?.find((c) => c.type === 'Stalled' && c.status === 'True')?.reason === 'ReleaseChunkDigestMismatch' ? true : undefined), {
      what: 'the environment to be Stalled',
    });
    await eventually(async () => ((await client.get<Rel>(Kinds.Release, id, namespace)).status?.conditions?.find((c) => c.type === 'Stalled' && c.status === 'True')?.reason === 'ReleaseChunkDigestMismatch' ? true : undefined), {
      what: 'the Release to be Stalled',
    });
  });

  it('deleting a chunked Release garbage-collects its chunks, which the operator made it own', async () => {
    const project = uniqueName('lrgc');
    projects.push(project);
    const namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    const { release, chunks } = chunkedRelease(project, 110);
    for (const chunk of chunks) await client.create(Kinds.ConfigMap, chunk);
    const created = await client.create<Rel>(Kinds.Release, release);
    await eventually(async () => {
      const found = await Promise.all(chunks.map((c) => client.get<Cm>(Kinds.ConfigMap, c.metadata.name, namespace)));
      return found.every((c) => c.metadata.ownerReferences?.some((o) => o.uid === created.metadata.uid)) ? true : undefined;
    }, { what: 'the operator to add the ownerReference to the immutable chunks' });
    await client.delete(Kinds.Release, created.metadata.name, namespace);
    await eventually(async () => ((await Promise.all(chunks.map((c) => client.find(Kinds.ConfigMap, c.metadata.name, namespace)))).every((c) => c === undefined) ? true : undefined), {
      what: 'the garbage collector to delete the chunks',
    });
  });

  it('stk apply --emit writes a large release as the Release and its chunk ConfigMaps, byte-stable; applied server-side, it is verified and owned', async () => {
    const project = uniqueName('lremit');
    projects.push(project);
    const namespace = `stk-${project}`;
    const gitops = await createTestRepo('stk-gitops-large');
    const source = await createTestRepo('stk-src-large');
    const large = largeSchema(110, { seed: 5 });
    const ref = await source.commit({ ...large.files, 'config/permissions.yaml': large.permissions }, 'large');
    for (const args of [['project', 'create', project], ['env', 'create', '--project', project, 'dev'], ['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--secret-ref', 'db/url']]) {
      expectExit(await stk([...args, '--emit', gitops.dir]));
    }
    const apply = ['apply', '--project', project, '--env', 'dev', '--ref', ref, '--repo', source.dir, '--emit', gitops.dir];
    const first = await stk(apply);
    expectExit(first);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(first.stdout)![1]!;
    const dir = path.join(gitops.dir, project, 'releases');
    expect(fs.readdirSync(dir).sort()).toEqual([`${id}-0.yaml`, `${id}.yaml`]);
    expect(first.stdout).toContain(`wrote ${path.join(project, 'releases', `${id}-0.yaml`)}`);
    const release = YAML.parse(fs.readFileSync(path.join(dir, `${id}.yaml`), 'utf8')) as Rel;
    expect(release.spec.content!.summary.connections).toEqual([{ name: 'main', tables: 110 }]);
    const chunk = YAML.parse(fs.readFileSync(path.join(dir, `${id}-0.yaml`), 'utf8')) as ChunkConfigMap;
    expect(chunk).toMatchObject({ kind: 'ConfigMap', immutable: true, metadata: { name: `${id}-0`, namespace, labels: { 'santokit.io/release': id } } });
    const before = fs.readFileSync(path.join(dir, `${id}-0.yaml`));
    const again = await stk(apply);
    expectExit(again);
    expect(again.stdout).toContain('nothing changed');
    expect(fs.readFileSync(path.join(dir, `${id}-0.yaml`)).equals(before)).toBe(true);

    // What a GitOps tool does with the directory: the namespace exists, then the files are applied server-side.
    expectExit(await stk(['project', 'create', project]));
    await eventually(async () => client.find(Kinds.Namespace, namespace), { what: `namespace ${namespace}` });
    expectExit(await kubectl(['apply', '--server-side', '-f', dir]));
    const created = await client.get<Rel>(Kinds.Release, id, namespace);
    await eventually(async () => ((await client.get<Cm>(Kinds.ConfigMap, `${id}-0`, namespace)).metadata.ownerReferences?.some((o) => o.uid === created.metadata.uid) ? true : undefined), {
      what: 'the operator to verify and own the applied chunk',
    });
    const shown = await stk(['release', 'show', id, '--project', project, '--json']);
    expectExit(shown);
    expect((JSON.parse(shown.stdout) as { tables: { main: string[] } }).tables.main).toEqual([...large.tables].sort());
  });

  it("the cluster's size refusals are one error naming the object, the size sent and the limit, never etcd's words", async () => {
    const project = uniqueName('lrsize');
    projects.push(project);
    const namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    await eventually(async () => client.find(Kinds.Namespace, namespace), { what: `namespace ${namespace}` });
    const refusal = async (obj: KubeObject, kind: KindInfo): Promise<ObjectTooLargeError> => {
      const err = await client.create(kind, obj).then(() => undefined, (e: unknown) => e);
      expect(err, String(err)).toBeInstanceOf(ObjectTooLargeError);
      const e = err as ObjectTooLargeError;
      expect(e.message).not.toMatch(/etcdserver|request is too large|Too long|entity too large/i);
      expect(e.hint).toBeTruthy();
      expect(e.exitCode).toBe(2);
      return e;
    };
    const name = uniqueName('big');
    // over a ConfigMap's 1 MiB: the API server's validation
    const data = await refusal({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: { a: 'x'.repeat(1_100_000) } }, Kinds.ConfigMap);
    expect(data.message).toMatch(new RegExp(`^ConfigMap ${name} in namespace ${namespace} is too large for the cluster: 1\\.05 MiB \\(\\d+ bytes\\) sent; .* is 1\\.00 MiB \\(1048576 bytes\\)`));
    // inline Releases of 1.7 and 2.5 MiB (what stk wrote before the chunked format): etcd's request limit, and the API server's for a write to etcd
    const inline = (mib: number) => ({ apiVersion: 'santokit.io/v1alpha1', kind: 'Release', metadata: { name: uniqueName('rel'), namespace }, spec: { project, ref: 'a'.repeat(40), schema: { main: { tables: {}, padding: 'x'.repeat(Math.round(mib * 1024 * 1024)) } }, permissions: { tables: {} } } });
    const etcd = await refusal(inline(1.7), Kinds.Release);
    expect(etcd.message).toMatch(/^Release rel-\S+ in namespace \S+ is too large for the cluster: 1\.70 MiB .* sent; etcd's request limit/);
    expect(etcd.details).toMatchObject({ kind: 'Release' });
    expect(etcd.hint).toMatch(/chunk ConfigMaps/);
    const grpc = await refusal(inline(2.5), Kinds.Release);
    expect(grpc.message).toMatch(/sent; the API server's limit for one write to etcd is 2\.00 MiB/);
    // over the API server's 3 MiB request body limit
    const body = await refusal({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: uniqueName('huge'), namespace }, data: { a: 'x'.repeat(3_300_000) } }, Kinds.ConfigMap);
    expect(body.message).toMatch(/request body limit/);
    // all annotations of an object together: 256 KiB (client-side kubectl apply's last-applied copy)
    const notes = await refusal({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: uniqueName('ann'), namespace, annotations: { note: 'x'.repeat(300_000) } } }, Kinds.ConfigMap);
    expect(notes.message).toMatch(/annotations of an object is 256\.0 KiB/);
    expect(notes.hint).toMatch(/server-side/);
  });
});
