import { describe, expect, it } from 'vitest';
import { findCondition } from '../../core/api/conditions.ts';
import { Kinds, type Environment } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { buildRelease } from '../../core/release/build.ts';
import { readRepoAtRef } from '../../core/release/source.ts';
import { releaseManifest } from '../../cli/manifests.ts';
import { adminClient, eventually, expectExit, startOperator, stk, uniqueName, waitForOperatorReady } from '../support/cluster.ts';
import { columnsOf, permissions, schemaV1 } from '../support/fixtures.ts';
import { createTestRepo } from '../support/git-repo.ts';
import { createTestDatabase } from '../support/postgres.ts';

/**
 * A GitOps tool applies a repository's objects in one batch, in an order of its own: an
 * Environment may arrive naming a Release that is not there yet. The Environment must not stay
 * refused: once the Release exists, it is applied.
 */

const client = await adminClient();

describe('GitOps apply order', () => {
  it('an Environment whose spec names a Release that arrives later serves it once it exists', async () => {
    const operator = await startOperator({ leaseName: uniqueName('lease-order') });
    const db = await createTestDatabase('apply_order');
    try {
      await waitForOperatorReady(operator);
      const project = uniqueName('order');
      const namespace = `stk-${project}`;
      expectExit(await stk(['project', 'create', project]));
      expectExit(await stk(['env', 'create', '--project', project, 'dev']));
      expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', db.url]));
      const repo = await createTestRepo();
      const ref = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
      const built = buildRelease(await readRepoAtRef(repo.dir, ref), { project, repo: repo.dir });

      // Given the Environment names the Release before the Release object exists
      await client.patch(Kinds.Environment, 'dev', namespace, { spec: { release: built.id } });
      const refused = await eventually(
        async () => {
          const env = await client.get<Environment & KubeObject>(Kinds.Environment, 'dev', namespace);
          return env.status?.lastRequest?.reason === 'ReleaseNotFound' ? env : undefined;
        },
        { what: 'the environment to find the release missing', timeoutMs: 45_000 },
      );
      expect(refused.status?.currentRelease).toBeUndefined();
      // a wait, not a refusal: a GitOps health check must not read it as failed
      expect(findCondition(refused.status, 'Stalled')?.status ?? 'False').toBe('False');
      expect(findCondition(refused.status, 'Reconciling')).toMatchObject({ status: 'True', reason: 'ReleaseNotFound' });

      // When the Release arrives
      await client.create(Kinds.Release, releaseManifest(built, namespace).release);

      // Then the environment applies and serves it, with nobody touching the Environment again
      const served = await eventually(
        async () => {
          const env = await client.get<Environment & KubeObject>(Kinds.Environment, 'dev', namespace);
          return env.status?.currentRelease === built.id ? env : undefined;
        },
        { what: `dev to serve ${built.id}`, timeoutMs: 60_000 },
      );
      expect(findCondition(served.status, 'Ready')).toMatchObject({ status: 'True' });
      expect(await columnsOf(db.sql, 'users')).toEqual(['email', 'id', 'name']);
    } finally {
      await operator.stop();
      await db.drop();
    }
  });
});
