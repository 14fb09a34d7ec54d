import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds } from '../../core/api/resources.ts';
import { adminClient, env, eventually, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';

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

  it('cascades to the namespace and its contents, and leaves databases alone', async () => {
    const name = uniqueName('doomed');
    const namespace = `stk-${name}`;
    expectExit(await stk(['project', 'create', name]));
    expectExit(await stk(['env', 'create', '--project', name, 'dev']));

    // A database the project's environment would use, with data in it.
    const admin = postgres(env('SANTOKIT_PG_ADMIN_URL'), { max: 1, onnotice: () => {} });
    const dbName = name.replace(/-/g, '_');
    await admin.unsafe(`CREATE DATABASE ${dbName}`);
    const db = postgres(env('SANTOKIT_PG_ADMIN_URL').replace(/\/[^/]*$/, `/${dbName}`), { max: 1, onnotice: () => {} });
    await db`CREATE TABLE users (id text primary key)`;
    await db`INSERT INTO users VALUES ('u1')`;
    const secret = await kubectl(['create', 'secret', 'generic', 'db', '-n', namespace, '--from-literal', 'url=postgres://example']);
    expectExit(secret);

    const del = await kubectl(['delete', 'project', name, '--wait=true', '--timeout=60s']);
    expectExit(del);
    await eventually(async () => ((await client.find(Kinds.Namespace, namespace)) === undefined ? true : undefined), { timeoutMs: 60_000, what: `namespace ${namespace} to be deleted` });
    expect(await client.find(Kinds.Environment, 'dev', namespace)).toBeUndefined();

    expect(await db`SELECT id FROM users`).toEqual([{ id: 'u1' }]);
    await db.end();
    await admin.unsafe(`DROP DATABASE ${dbName} WITH (FORCE)`);
    await admin.end();
  });
});
