import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Connection } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { columnsOf, permissions, schemaV1 } from '../support/fixtures.ts';
import { createTestRepo } from '../support/git-repo.ts';
import { createTestDatabase } from '../support/postgres.ts';

const client = await adminClient();

/** Deleting a Project removes its namespace and everything in it through real garbage collection; databases are untouched. */
describe('project deletion', () => {
  let operator: OperatorProcess;

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-deletion') });
    await waitForOperatorReady(operator);
  });
  afterAll(async () => {
    await operator.stop();
  });

  it('cascades to the namespace and its contents, and leaves the databases it served alone', async () => {
    const name = uniqueName('doomed');
    const namespace = `stk-${name}`;
    const db = await createTestDatabase('doomed');
    const repo = await createTestRepo('stk-doomed');
    try {
      expectExit(await stk(['project', 'create', name]));
      expectExit(await stk(['env', 'create', '--project', name, 'dev']));
      // The project's environment uses the database: a Connection to it, probed by the operator,
      // and a release applied through it (the operator created the table).
      expectExit(await stk(['connections', 'set', '--project', name, '--env', 'dev', '--name', 'main', '--db-url', '-'], { input: db.url }));
      expectExit(await stk(['connections', 'test', '--project', name, '--env', 'dev', '--name', 'main']));
      const ref = await repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
      expectExit(await stk(['apply', '--project', name, '--env', 'dev', '--ref', ref, '--repo', repo.dir]));
      const connection = await client.get<Connection & KubeObject>(Kinds.Connection, 'dev-main', namespace);
      expect(connection.status?.conditions?.find((c) => c.type === 'Reachable')?.status).toBe('True');
      expect(await columnsOf(db.sql, 'users')).toEqual(['email', 'id', 'name']);
      await db.sql`INSERT INTO users (id, email, name) VALUES ('01J0000000000000000000000A', 'ann@example.com', 'Ann')`;
      const rolesBefore = await db.sql<{ rolname: string }[]>`SELECT rolname FROM pg_roles ORDER BY rolname`;
      // The one role the operator made for the data plane (docs/security.md) goes with the Connection.
      const secret = await client.get<KubeObject & { data: { role: string } }>(Kinds.Secret, 'santokit-dataplane-dev-main', namespace);
      const dataPlaneRole = Buffer.from(secret.data.role, 'base64').toString();
      expect(rolesBefore.map((r) => r.rolname)).toContain(dataPlaneRole);

      const del = await kubectl(['delete', 'project', name, '--wait=true', '--timeout=60s']);
      expectExit(del);
      await eventually(async () => ((await client.find(Kinds.Namespace, namespace)) === undefined ? true : undefined), { timeoutMs: 60_000, what: `namespace ${namespace} to be deleted` });
      expect(await client.find(Kinds.Environment, 'dev', namespace)).toBeUndefined();
      expect(await client.find(Kinds.Connection, 'dev-main', namespace)).toBeUndefined();

      // The database, its table, its rows and the other roles are as they were.
      expect(await columnsOf(db.sql, 'users')).toEqual(['email', 'id', 'name']);
      expect(await db.sql`SELECT id, email, name FROM users`).toEqual([{ id: '01J0000000000000000000000A', email: 'ann@example.com', name: 'Ann' }]);
      expect(await db.sql<{ rolname: string }[]>`SELECT rolname FROM pg_roles ORDER BY rolname`).toEqual(rolesBefore.filter((r) => r.rolname !== dataPlaneRole));
    } finally {
      await db.drop();
    }
  });
});
