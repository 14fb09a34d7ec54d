import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { buildRelease } from '../../core/release/build.ts';
import { environmentManifest, releaseManifest } from '../../cli/manifests.ts';
import { adminClient, eventually, startOperator, uniqueName, waitForOperatorReady } from '../support/cluster.ts';
import { notesApp, startBridge, type BridgeProcess } from './support.ts';

/**
 * Issue 17: the operator and the data plane hold Releases as metadata only; the data plane
 * fetches and compiles only the releases its environments serve or ask for, in a cache bounded
 * by count that evicts releases no environment uses. Read from the processes' own /metrics.
 */

const client = await adminClient();
type Env = Environment & KubeObject;
type Rel = Release & KubeObject;

/** The value of a sample of a Prometheus text page (`name{labels} value`); undefined when absent. */
function sample(page: string, name: string, labels = ''): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** How many Releases the cluster holds now. */
async function releasesInCluster(): Promise<number> {
  return (await client.listMetadata(Kinds.Release)).items.length;
}

async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** Releases named (desired or current) by some Environment of the cluster that exist: what the data plane must hold. */
async function releasesInUse(): Promise<number> {
  const { items: envs } = await client.list<Env>(Kinds.Environment);
  const existing = new Set((await client.listMetadata(Kinds.Release)).items.map((r) => `${r.metadata.namespace}/${r.metadata.name}`));
  const named = new Set(envs.flatMap((e) => [e.spec.release, e.status?.currentRelease].filter(Boolean).map((id) => `${e.metadata.namespace}/${id}`)));
  return [...named].filter((k) => existing.has(k)).length;
}

describe('Releases are cached as metadata; only releases in use are compiled', () => {
  const namespace = uniqueName('stk-relcache');
  const project = namespace.slice(4);
  const ids: string[] = [];

  beforeAll(async () => {
    await client.create(Kinds.Namespace, { metadata: { name: namespace } });
    // Four distinct releases of the same one-table app (only the commit differs).
    const files = notesApp({ select: ['admin'] });
    for (let i = 0; i < 4; i++) {
      const commit = `${i}`.repeat(40);
      const built = buildRelease({ commit, schemaFiles: [{ path: 'schema/app.yaml', text: files['schema/app.yaml']! }], permissions: { path: 'config/permissions.yaml', text: files['config/permissions.yaml']! } }, { project });
      await client.create<Rel>(Kinds.Release, releaseManifest(built, namespace).release);
      ids.push(built.id);
    }
  });

  afterAll(async () => {
    // An operator may have put its in-use finalizer on them: take it off so the namespace goes.
    for (const id of ids) await client.patch(Kinds.Release, id, namespace, { metadata: { finalizers: null } }).catch(() => undefined);
    await client.delete(Kinds.Namespace, namespace);
  });

  it('the operator watches Releases as metadata only', async () => {
    const operator = await startOperator({ leaseName: uniqueName('lease-relcache') });
    try {
      await waitForOperatorReady(operator);
      const url = `http://127.0.0.1:${operator.healthPort}`;
      // Releases of earlier files' namespaces may still be going (namespace deletion is
      // asynchronous): the cluster's count is read afresh around each scrape, and must not move.
      const page = await eventually(async () => {
        const before = await releasesInCluster();
        const p = await metrics(url);
        const after = await releasesInCluster();
        return before === after && sample(p, 'santokit_informer_cached_objects', 'kind="Release",content="metadata"') === after ? p : undefined;
      }, { timeoutMs: 20_000, what: 'the operator to cache every Release' });
      expect(sample(page, 'santokit_informer_cached_objects', 'kind="Release",content="full"')).toBeUndefined();
      // Environments are still cached whole (the controllers read their spec and status).
      expect(page).toMatch(/santokit_informer_cached_objects\{kind="Environment",content="full"\}/);
      // The release controller still reconciles each Release (it GETs the one it works on).
      await eventually(async () => ((await client.get<Rel>(Kinds.Release, ids[3]!, namespace)).status?.conditions?.some((c) => c.type === 'Ready') ? true : undefined), {
        timeoutMs: 20_000,
        what: `release ${ids[3]} to be reconciled`,
      });
    } finally {
      await operator.stop();
    }
  });

  it('the data plane compiles only the releases environments use, evicts the ones they stop using, and fetches one again when it is used again', async () => {
    const env = uniqueName('e');
    await client.create<Env>(Kinds.Environment, environmentManifest(env, namespace, { project, release: ids[0]! }));
    await client.patch(Kinds.Environment, env, namespace, { status: { currentRelease: ids[0] } }, { subresource: 'status' });
    const bridge: BridgeProcess = await startBridge({ args: ['--release-cache-entries', '1'] });
    const serving = (id: string) => bridge.records().some((r) => r.msg === 'serving release' && r.environment === `${namespace}/${env}` && r.release === id);
    // Other namespaces' Environments and Releases count too (the data plane serves the whole
    // cluster, and earlier files' namespaces may still be going): they are read afresh around each
    // scrape, and a scrape counts only when they did not move meanwhile.
    const settled = async (what: string) =>
      eventually(async () => {
        const [expected, inCluster] = [await releasesInUse(), await releasesInCluster()];
        const p = await metrics(bridge.probeUrl);
        if ((await releasesInUse()) !== expected || (await releasesInCluster()) !== inCluster) return undefined;
        const held = sample(p, 'santokit_informer_cached_objects', 'kind="Release",content="metadata"');
        return sample(p, 'santokit_release_cache_entries') === expected && sample(p, 'santokit_release_cache_in_use') === expected && held === inCluster ? { page: p, inCluster } : undefined;
      }, { timeoutMs: 10_000, what });
    try {
      await eventually(async () => (serving(ids[0]!) ? true : undefined), { timeoutMs: 20_000, what: `the data plane to serve ${ids[0]}` });
      const first = await settled('the cache to hold exactly the releases in use, and the informer every Release as metadata');
      let page = first.page;
      const inCluster = first.inCluster;
      expect(sample(page, 'santokit_informer_cached_objects', 'kind="Release",content="full"')).toBeUndefined();
      expect(sample(page, 'santokit_release_cache_bytes')).toBeGreaterThan(0);
      // prom-client's process and runtime figures, under their standard names.
      expect(sample(page, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(sample(page, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
      // Only releases in use were fetched: never our three others.
      const fetched = sample(page, 'santokit_release_fetches_total')!;
      expect(fetched).toBeGreaterThanOrEqual(1);
      expect(fetched).toBeLessThanOrEqual(inCluster - 3);

      // The pointer moves to the second release: it is fetched and served, the first one evicted (bound: 1).
      await client.patch(Kinds.Environment, env, namespace, { spec: { release: ids[1] } });
      await client.patch(Kinds.Environment, env, namespace, { status: { currentRelease: ids[1] } }, { subresource: 'status' });
      await eventually(async () => (serving(ids[1]!) ? true : undefined), { timeoutMs: 10_000, what: `the data plane to serve ${ids[1]}` });
      page = (await settled('the first release to be evicted')).page;
      expect(sample(page, 'santokit_release_cache_evictions_total')).toBeGreaterThanOrEqual(1);
      expect(sample(page, 'santokit_release_fetches_total')).toBe(fetched + 1);

      // Back to the first: fetched again, served again.
      await client.patch(Kinds.Environment, env, namespace, { spec: { release: ids[0] } });
      await client.patch(Kinds.Environment, env, namespace, { status: { currentRelease: ids[0] } }, { subresource: 'status' });
      await eventually(async () => (bridge.records().filter((r) => r.msg === 'serving release' && r.environment === `${namespace}/${env}`).length === 3 ? true : undefined), {
        timeoutMs: 10_000,
        what: `the data plane to serve ${ids[0]} again`,
      });
      page = (await settled('the second release to be evicted')).page;
      expect(sample(page, 'santokit_release_fetches_total')).toBe(fetched + 2);
      const moves = bridge.records().filter((r) => r.msg === 'serving release' && r.environment === `${namespace}/${env}`).map((r) => r.release);
      expect(moves).toEqual([ids[0], ids[1], ids[0]]);
    } finally {
      await bridge.stop();
    }
  });
});
