import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Connection } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { buildRelease } from '../../core/release/build.ts';
import { SCHEMA_LOCK_KEY } from '../../core/schema/bookkeeping.ts';
import { releaseManifest } from '../../cli/manifests.ts';
import { adminClient, eventually, stk, expectExit, type OperatorProcess } from '../support/cluster.ts';
import { call, createApiKey, createDataplaneProject, dataOf, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type BridgeProcess, type DataplaneProject, notesApp } from './support.ts';

/**
 * The data plane's database role (the second wall behind the permission model): the operator
 * creates it per Connection with DML on the managed tables only and hands the data plane its URL
 * in a Secret; the bridge connects with it, and Postgres itself refuses DDL, other schemas and
 * tables no release declares.
 */

const client = await adminClient();

const files = notesApp({ select: ['admin'], insert: ['admin'] });

type SecretObject = KubeObject & { data?: Record<string, string> };

/** SQLSTATE of a statement run as the data plane's role, or 'ok'. */
async function outcome(run: Promise<unknown>): Promise<string> {
  try {
    await run;
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe("the data plane's database role", () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  const opened: postgres.Sql[] = [];

  /** The data plane's URL, once the operator has written it with grants for the current release. */
  async function dataPlaneSql(): Promise<{ sql: postgres.Sql; role: string }> {
    const secret = await eventually(
      async () => {
        const conn = await client.find<Connection & KubeObject>(Kinds.Connection, 'dev-main', p.namespace);
        const ready = conn?.status?.conditions?.some((c) => c.type === 'DataPlaneCredential' && c.status === 'True');
        return ready ? client.find<SecretObject>(Kinds.Secret, 'santokit-dataplane-dev-main', p.namespace) : undefined;
      },
      { timeoutMs: 30_000, what: 'the data-plane credential of dev-main' },
    );
    const url = Buffer.from(secret.data!.url!, 'base64').toString();
    const role = Buffer.from(secret.data!.role!, 'base64').toString();
    expect(new URL(url).username).toBe(role);
    expect(new URL(url).pathname).toBe(`/${p.dbs.dev!.name}`);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    opened.push(sql);
    return { sql, role };
  }

  beforeAll(async () => {
    operator = await startDataplaneOperator('dp-priv');
    bridge = await startBridge();
    p = await createDataplaneProject('dppriv', ['dev']);
    await p.apply('dev', files);
    await waitBridgeReady(bridge);
  });

  afterAll(async () => {
    for (const sql of opened) await sql.end({ timeout: 1 });
    await bridge?.stop('SIGKILL');
    await operator?.stop();
    await p?.drop();
  });

  it('may read and write the managed tables and nothing else: DDL, the bookkeeping schema and other schemas are refused by Postgres', async () => {
    const { sql, role } = await dataPlaneSql();
    const admin = p.dbs.dev!.sql;
    await admin.unsafe('CREATE SCHEMA IF NOT EXISTS other; CREATE TABLE IF NOT EXISTS other.secrets (v text); INSERT INTO other.secrets VALUES (\'hidden\')');

    expect(await outcome(sql`INSERT INTO notes (id, body) VALUES ('01HZZZZZZZZZZZZZZZZZZZZZZZ', 'hi')`)).toBe('ok');
    expect(await sql`SELECT body FROM notes`).toEqual([{ body: 'hi' }]);
    expect(await outcome(sql`UPDATE notes SET body = 'bye'`)).toBe('ok');
    expect(await outcome(sql`DELETE FROM notes`)).toBe('ok');

    const denied = '42501';
    expect(await outcome(sql`CREATE TABLE intruder (id int)`)).toBe(denied);
    expect(await outcome(sql`CREATE SCHEMA intruder`)).toBe(denied);
    expect(await outcome(sql`ALTER TABLE notes ADD COLUMN extra text`)).toBe(denied);
    expect(await outcome(sql`DROP TABLE notes`)).toBe(denied);
    expect(await outcome(sql`TRUNCATE notes`)).toBe(denied);
    expect(await outcome(sql`CREATE INDEX intruder_idx ON notes (body)`)).toBe(denied);
    expect(await outcome(sql`SELECT * FROM santokit.applied_releases`)).toBe(denied);
    expect(await outcome(sql`SELECT * FROM other.secrets`)).toBe(denied);
    const [attrs] = await admin`SELECT rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolbypassrls FROM pg_roles WHERE rolname = ${role}`;
    expect(attrs).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolinherit: false, rolbypassrls: false });
  });

  it('the data plane connects as that role, never as the owner', async () => {
    const { role } = await dataPlaneSql();
    const key = await createApiKey(p.project, 'dev', ['admin'], undefined, bridge);
    await waitServable(bridge, key.apiKey, 'db/notes/select');
    dataOf(await call(bridge, key.apiKey, 'db/notes/insert', { data: { body: 'through the bridge' } }));
    const sessions = await p.dbs.dev!.sql`SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = ${p.dbs.dev!.name} AND application_name = 'santokit-bridge'`;
    expect(sessions).toEqual([{ usename: role }]);
  });

  it('a table the owner creates outside a release loses the default grant at the next probe; a new release table is served at once', async () => {
    const { sql } = await dataPlaneSql();
    const admin = p.dbs.dev!.sql;
    await admin.unsafe('CREATE TABLE IF NOT EXISTS unmanaged (v text)');
    // `stk connections test` asks for a fresh probe, which re-makes the grants.
    expectExit(await stk(['connections', 'test', '--project', p.project, '--env', 'dev']));
    expect(await outcome(sql`SELECT * FROM unmanaged`)).toBe('42501');

    await p.apply('dev', {
      ...files,
      'schema/app.yaml': `${files['schema/app.yaml']}  tags:
    id: { generate: ulid }
    columns:
      label: { type: string }
`,
    });
    expect(await outcome(sql`SELECT * FROM tags`)).toBe('ok');
  });

  it('grants that waited for a migration follow the releases of that moment: the table it created keeps its grant', async () => {
    // A project of its own: its environment is moved by hand below.
    const q = await createDataplaneProject('dpprace', ['dev']);
    const holder = await q.dbs.dev!.sql.reserve();
    try {
      await q.apply('dev', files);
      const admin = q.dbs.dev!.sql;
      // Every REVOKE run in this database is written down (an event trigger; the test's user is a superuser).
      await admin.unsafe(`CREATE SCHEMA audit; CREATE TABLE audit.revokes (query text);
        CREATE FUNCTION audit.log_revoke() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit.revokes VALUES (current_query()); END $$;
        CREATE EVENT TRIGGER log_revoke ON ddl_command_end WHEN TAG IN ('REVOKE') EXECUTE FUNCTION audit.log_revoke()`);
      const withTags = `${files['schema/app.yaml']}  tags:\n    id: { generate: ulid }\n    columns:\n      label: { type: string }\n`;
      const built = buildRelease({ commit: 'a'.repeat(40), schemaFiles: [{ path: 'schema/app.yaml', text: withTags }], permissions: { path: 'config/permissions.yaml', text: files['config/permissions.yaml']! } }, { project: q.project });
      await client.create(Kinds.Release, releaseManifest(built, q.namespace).release);

      // A migration in progress: it holds the schema lock and has created the new release's table.
      await holder`BEGIN`;
      await holder`SELECT pg_catalog.pg_advisory_xact_lock(${SCHEMA_LOCK_KEY}::int8)`;
      await holder`CREATE TABLE tags (id text PRIMARY KEY, label text)`;
      // A probe asks for the grants (planned from the environment as it is now) and waits for the lock.
      const probing = stk(['connections', 'test', '--project', q.project, '--env', 'dev']);
      await eventually(
        async () => ((await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`)[0]!.n > 0 ? true : undefined),
        { timeoutMs: 20_000, what: 'the grants to wait for the schema lock' },
      );
      // Meanwhile the environment asks for the release with that table (as stk apply or GitOps do before the migration).
      await client.patch(Kinds.Environment, 'dev', q.namespace, { spec: { release: built.id } });
      await holder`COMMIT`;
      expectExit(await probing);

      // The grants made once the lock was free are those of the releases then asked for: tags was never revoked.
      const conn = await client.get<Connection & KubeObject>(Kinds.Connection, 'dev-main', q.namespace);
      expect(conn.status?.conditions?.find((c) => c.type === 'DataPlaneCredential')).toMatchObject({ status: 'True' });
      // (only the REVOKE statements of each logged batch: the batch also sets the role's password verifier)
      const revokes = (await admin<Array<{ query: string }>>`SELECT query FROM audit.revokes`).flatMap((r) => r.query.split(';').map((t) => t.trim()).filter((t) => t.startsWith('REVOKE')));
      expect(revokes.filter((text) => text.includes('"public"."tags"'))).toEqual([]);
    } finally {
      await holder`ROLLBACK`.catch(() => undefined);
      holder.release();
      await q.drop();
    }
  });
});
