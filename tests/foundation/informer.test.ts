import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { Informer } from '../../core/kube/informer.ts';
import { createLogger } from '../../core/log.ts';
import { adminClient, eventually, uniqueName } from '../support/cluster.ts';

/**
 * The one informer against the real API server: a metadata-only cache (PartialObjectMetadata
 * lists and watches over the wrapper's own request path) sees every change but never a spec or
 * data, and a silent watch is noticed and restarted.
 */

const client = await adminClient();
const log = createLogger('test', 'silent');

describe('the informer', () => {
  const namespace = uniqueName('informer');

  beforeAll(async () => {
    await client.create(Kinds.Namespace, { metadata: { name: namespace } });
  });
  afterAll(async () => {
    await client.delete(Kinds.Namespace, namespace);
  });

  it('with metadataOnly, lists and watches metadata only: adds, changes and deletes arrive, the data never does', async () => {
    const listed = uniqueName('listed');
    await client.create(Kinds.ConfigMap, { metadata: { name: listed, namespace }, data: { payload: 'x'.repeat(10_000) } });
    const inf = new Informer<KubeObject>(client, Kinds.ConfigMap, log, { namespace, metadataOnly: true });
    const seen: Array<[string, KubeObject]> = [];
    inf.on('upsert', (o: KubeObject) => seen.push(['upsert', o]));
    inf.on('delete', (o: KubeObject) => seen.push(['delete', o]));
    inf.start();
    try {
      await inf.waitForSync();
      expect(inf.get(`${namespace}/${listed}`)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: expect.objectContaining({ name: listed, namespace }) });
      expect(inf.get(`${namespace}/${listed}`)!.metadata.managedFields).toBeUndefined();

      const watched = uniqueName('watched');
      await client.create(Kinds.ConfigMap, { metadata: { name: watched, namespace }, data: { payload: 'y'.repeat(10_000) } });
      await eventually(async () => inf.get(`${namespace}/${watched}`), { timeoutMs: 10_000, what: 'the watch to see the new ConfigMap' });
      await client.patch(Kinds.ConfigMap, watched, namespace, { metadata: { labels: { changed: 'yes' } } });
      await eventually(async () => (inf.get(`${namespace}/${watched}`)?.metadata.labels as Record<string, string> | undefined)?.changed, { timeoutMs: 10_000, what: 'the label change' });
      await client.delete(Kinds.ConfigMap, watched, namespace);
      await eventually(async () => (inf.get(`${namespace}/${watched}`) ? undefined : true), { timeoutMs: 10_000, what: 'the delete' });

      expect(seen.map(([t, o]) => `${t} ${o.metadata.name}`)).toEqual([`upsert ${listed}`, `upsert ${watched}`, `upsert ${watched}`, `delete ${watched}`]);
      for (const [, o] of seen) {
        expect(Object.keys(o).sort()).toEqual(['apiVersion', 'kind', 'metadata']);
        expect(o.kind).toBe('ConfigMap');
      }
    } finally {
      inf.stop();
    }
  });

  it('a watch that says nothing past stallAfterMs is restarted, and changes made after are still seen', async () => {
    const inf = new Informer<KubeObject>(client, Kinds.ConfigMap, log, { namespace, metadataOnly: true, stallAfterMs: 1_500, watchTimeoutSeconds: 600, labelSelector: 'quiet=yes' });
    const restarts: string[] = [];
    inf.on('watchRestart', (reason: string) => restarts.push(reason));
    inf.start();
    try {
      await inf.waitForSync();
      await eventually(async () => (restarts.includes('stalled') ? true : undefined), { timeoutMs: 15_000, what: 'the stalled watch to be restarted' });
      const later = uniqueName('later');
      await client.create(Kinds.ConfigMap, { metadata: { name: later, namespace, labels: { quiet: 'yes' } } });
      await eventually(async () => inf.get(`${namespace}/${later}`), { timeoutMs: 15_000, what: 'the restarted watch to see a new ConfigMap' });
    } finally {
      inf.stop();
    }
  });

  it('a watch the API server refuses (an unknown kind) is reported and retried with backoff, not given up', async () => {
    const missing = { ...Kinds.ConfigMap, group: 'nowhere.santokit.io', version: 'v1', plural: 'things', kind: 'Thing' };
    const inf = new Informer<KubeObject>(client, missing, log, { namespace, metadataOnly: true, backoff: { initialMs: 50, maxMs: 200 } });
    const errors: unknown[] = [];
    inf.on('error', (err: unknown) => errors.push(err));
    inf.start();
    try {
      await eventually(async () => (errors.length >= 3 ? true : undefined), { timeoutMs: 10_000, what: 'repeated list attempts' });
      expect(inf.synced).toBe(false);
      expect(inf.failingSince).toBeDefined();
      expect((errors[0] as Error).constructor.name).toBe('NotFoundError');
    } finally {
      inf.stop();
    }
  });
});
