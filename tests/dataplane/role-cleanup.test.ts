import net from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Connection } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, expectExit, type OperatorProcess } from '../support/cluster.ts';
import { createTestRepo } from '../support/git-repo.ts';
import { adminUrl, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { createDataplaneProject, notesApp } from './support.ts';

/**
 * The data plane's database role (`stk_dp_<uid>`, one per Connection) goes with its Connection:
 * deleting the Connection drops the role and its credential Secret, through the Connection's
 * finalizer, on a real Postgres and a real API server. A database that cannot be reached does not
 * hold the deletion for longer than `--connection-cleanup-timeout` (5 s here); a Connection moved to
 * another database of the same server leaves the previous one.
 */

const client = await adminClient();
const FINALIZER = 'santokit.io/data-plane-role';
const CLEANUP_TIMEOUT_SECONDS = 5;
const files = notesApp({ select: ['admin'], insert: ['admin'] });

type Conn = Connection & KubeObject;
type SecretObject = KubeObject & { data?: Record<string, string> };
type EventObject = KubeObject & { involvedObject?: { name?: string; kind?: string }; reason?: string; message?: string; type?: string };

/** pg_roles is one per server: any database answers. */
async function withAdmin<T>(run: (sql: postgres.Sql) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(adminUrl());
  if (database) url.pathname = `/${database}`;
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    return await run(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const roleExists = (role: string) => withAdmin(async (sql) => (await sql`SELECT 1 FROM pg_roles WHERE rolname = ${role}`).length > 0);

/** How many privileges (table, sequence, schema, default) `role` holds in `database`. */
const privilegesIn = (database: string, role: string) =>
  withAdmin(async (sql) => {
    const [row] = await sql<[{ n: number }]>`
      SELECT (SELECT count(*) FROM pg_class c, LATERAL aclexplode(c.relacl) a WHERE a.grantee = r.oid)
           + (SELECT count(*) FROM pg_namespace n, LATERAL aclexplode(n.nspacl) a WHERE a.grantee = r.oid)
           + (SELECT count(*) FROM pg_default_acl d, LATERAL aclexplode(d.defaclacl) a WHERE a.grantee = r.oid) AS n
      FROM pg_roles r WHERE r.rolname = ${role}`;
    return Number(row?.n ?? 0);
  }, database);

/** The role of a Connection's data-plane credential, once the operator has made it for the Connection's current generation. */
async function credentialOf(namespace: string, connection: string): Promise<{ role: string; secret: SecretObject }> {
  let last: Conn | undefined;
  return eventually(
    async () => {
      const conn = (last = await client.find<Conn>(Kinds.Connection, connection, namespace));
      const ready = conn?.status?.conditions?.some((c) => c.type === 'DataPlaneCredential' && c.status === 'True' && c.observedGeneration === conn.metadata.generation);
      const secret = ready ? await client.find<SecretObject>(Kinds.Secret, `santokit-dataplane-${connection}`, namespace) : undefined;
      if (!secret) return undefined;
      return { role: Buffer.from(secret.data!.role!, 'base64').toString(), secret };
    },
    { timeoutMs: 45_000, get what() { return `the data-plane credential of ${namespace}/${connection} (last status: ${JSON.stringify(last?.status)})`; } },
  );
}

async function eventsOf(namespace: string, connection: string): Promise<EventObject[]> {
  const { items } = await client.list<EventObject>({ group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true }, { namespace });
  return items.filter((e) => e.involvedObject?.kind === 'Connection' && e.involvedObject.name === connection);
}

/** A project with one environment whose connection `main` has the given URL, and a release of the notes app applied. */
async function projectOn(prefix: string, url: string): Promise<{ project: string; namespace: string }> {
  const project = uniqueName(prefix);
  expectExit(await stk(['project', 'create', project]));
  expectExit(await stk(['env', 'create', '--project', project, 'dev']));
  expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-'], { input: url }));
  const repo = await createTestRepo(`stk-${prefix}`);
  const ref = await repo.commit(files, 'notes');
  expectExit(await stk(['apply', '--project', project, '--env', 'dev', '--ref', ref, '--repo', repo.dir]));
  return { project, namespace: `stk-${project}` };
}

/** Projects this file deleted; afterAll waits for their namespaces while the operator still runs. */
const deleted = new Set<string>();

/** Deletes a test's project (its namespace goes with it); `wait` waits for the namespace to be gone. */
async function deleteProject(project: string | undefined, wait = false): Promise<void> {
  if (!project) return;
  deleted.add(project);
  await kubectl(['delete', 'project', project, '--wait=false']);
  if (wait) await namespaceGone(project);
}

const namespaceGone = (project: string) =>
  eventually(async () => ((await client.find(Kinds.Namespace, `stk-${project}`)) === undefined ? true : undefined), { timeoutMs: 90_000, what: `namespace stk-${project} to be deleted` });

/** A TCP forwarder to the test Postgres on a port of its own; `close` makes the database unreachable through it. */
async function postgresProxy(): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  const target = new URL(adminUrl());
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((inbound) => {
    connections += 1;
    const outbound = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("the data plane's role goes with its Connection", () => {
  let operator: OperatorProcess;

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-role-cleanup'), args: ['--connection-cleanup-timeout', String(CLEANUP_TIMEOUT_SECONDS)] });
    await waitForOperatorReady(operator);
  });
  afterAll(async () => {
    // No environment of this file is left behind for a later file's data plane (its /readyz
    // names every environment), and no Connection waits for a finalizer nobody runs.
    await Promise.all([...deleted].map(namespaceGone));
    await operator?.stop();
  }, 120_000);

  it("deleting a Connection drops its role and Secret, and only that Connection's; the tables stay", async () => {
    const p = await createDataplaneProject('rcdel', ['dev', 'prod']);
    try {
      await p.apply('dev', files);
      await p.apply('prod', files);
      const dev = await credentialOf(p.namespace, 'dev-main');
      const prod = await credentialOf(p.namespace, 'prod-main');
      expect(dev.role).toMatch(/^stk_dp_[0-9a-f]{24}$/);
      expect(prod.role).not.toBe(dev.role);
      expect((await client.get<Conn>(Kinds.Connection, 'dev-main', p.namespace)).metadata.finalizers).toContain(FINALIZER);
      expect(await roleExists(dev.role)).toBe(true);
      expect(await privilegesIn(p.dbs.dev!.name, dev.role)).toBeGreaterThan(0);

      expectExit(await kubectl(['delete', 'connection', 'dev-main', '--namespace', p.namespace, '--wait=true', '--timeout=60s']));
      expect(await client.find(Kinds.Connection, 'dev-main', p.namespace)).toBeUndefined();
      expect(await roleExists(dev.role)).toBe(false);
      await eventually(async () => ((await client.find(Kinds.Secret, 'santokit-dataplane-dev-main', p.namespace)) === undefined ? true : undefined), {
        timeoutMs: 30_000,
        what: 'the Secret santokit-dataplane-dev-main to be deleted',
      });
      // The other Connection keeps its role, its grants and its Secret; the deleted one's tables stay.
      expect(await roleExists(prod.role)).toBe(true);
      expect(await privilegesIn(p.dbs.prod!.name, prod.role)).toBeGreaterThan(0);
      expect(await client.find(Kinds.Secret, 'santokit-dataplane-prod-main', p.namespace)).toBeDefined();
      expect(await p.dbs.dev!.sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`).toEqual([{ tablename: 'notes' }]);
      expect((await eventsOf(p.namespace, 'dev-main')).filter((e) => e.reason === 'DataPlaneRoleLeftBehind')).toEqual([]);
      // The project's deletion takes the other Connection, and its role, along.
      await deleteProject(p.project, true);
      expect(await roleExists(prod.role)).toBe(false);
    } finally {
      await deleteProject(p.project);
      await p.drop();
    }
  });

  it('drops the role when the connection user has CREATEROLE only (no superuser, no membership in the role)', async () => {
    const owner = `stk_owner_${uniqueName('o').slice(2).replace(/-/g, '')}`;
    const password = uniqueName('pw');
    const database = `rcowner_${owner.slice(-6)}`;
    await withAdmin((sql) => sql.unsafe(`CREATE ROLE "${owner}" LOGIN CREATEROLE PASSWORD '${password}'`));
    await withAdmin((sql) => sql.unsafe(`CREATE DATABASE "${database}" OWNER "${owner}" TEMPLATE template0`));
    let project: string | undefined;
    try {
      const url = new URL(adminUrl());
      url.username = owner;
      url.password = password;
      url.pathname = `/${database}`;
      const created = await projectOn('rcown', url.toString());
      project = created.project;
      const namespace = created.namespace;
      const { role } = await credentialOf(namespace, 'dev-main');
      expect(await withAdmin(async (sql) => (await sql`SELECT pg_has_role(${owner}, ${role}, 'USAGE') AS m`)[0]!.m)).toBe(false);
      expect(await privilegesIn(database, role)).toBeGreaterThan(0);

      expectExit(await kubectl(['delete', 'connection', 'dev-main', '--namespace', namespace, '--wait=true', '--timeout=60s']));
      expect(await roleExists(role)).toBe(false);
      expect((await eventsOf(namespace, 'dev-main')).filter((e) => e.reason === 'DataPlaneRoleLeftBehind')).toEqual([]);
    } finally {
      await deleteProject(project);
      await withAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
      await withAdmin((sql) => sql.unsafe(`DROP ROLE IF EXISTS "${owner}"`));
    }
  });

  it('an unreachable database does not hold the deletion: the finalizer lets go after the cleanup timeout with a Warning naming the role', async () => {
    const db = await createTestDatabase('rcgone');
    const proxy = await postgresProxy();
    let role: string | undefined;
    let project: string | undefined;
    try {
      const url = new URL(db.url);
      url.port = String(proxy.port);
      const created = await projectOn('rcgone', url.toString());
      project = created.project;
      const namespace = created.namespace;
      ({ role } = await credentialOf(namespace, 'dev-main'));
      await proxy.close();

      const deletedAt = Date.now();
      expectExit(await kubectl(['delete', 'connection', 'dev-main', '--namespace', namespace, '--wait=false']));
      // Held by the finalizer while it retries, and let go once the timeout has passed.
      await eventually(async () => ((await client.find(Kinds.Connection, 'dev-main', namespace)) === undefined ? true : undefined), {
        timeoutMs: 60_000,
        what: 'the Connection to be deleted after the cleanup timeout',
      });
      console.log(`deletion → Connection gone: ${Date.now() - deletedAt} ms`);
      expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(CLEANUP_TIMEOUT_SECONDS * 1000 - 1000);
      expect(operator!.logs()).toContain('data-plane role not dropped yet');
      const warnings = (await eventsOf(namespace, 'dev-main')).filter((e) => e.reason === 'DataPlaneRoleLeftBehind');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.type).toBe('Warning');
      expect(warnings[0]!.message).toContain(role);
      expect(warnings[0]!.message).toContain(`127.0.0.1:${proxy.port}/${db.name}`);
      expect(warnings[0]!.message).toContain(`DROP ROLE ${role}`);
      expect(warnings[0]!.message).not.toContain(new URL(adminUrl()).password || 'no password');
      // The credential Secret is owned by the Connection: the garbage collector deletes it after the Connection.
      await eventually(async () => ((await client.find(Kinds.Secret, 'santokit-dataplane-dev-main', namespace)) === undefined ? true : undefined), {
        timeoutMs: 30_000,
        what: 'the Secret santokit-dataplane-dev-main to be deleted',
      });
      // Left behind, as the Warning says.
      expect(await roleExists(role)).toBe(true);
    } finally {
      await proxy.close();
      await deleteProject(project);
      if (role) await withAdmin((sql) => sql.unsafe(`DROP OWNED BY "${role}"; DROP ROLE IF EXISTS "${role}"`), db.name).catch(() => undefined);
      await db.drop();
    }
  });

  it("moving a Connection to another database of the same server revokes the role's privileges in the previous one", async () => {
    const first = await createTestDatabase('rcmove_a');
    const second = await createTestDatabase('rcmove_b');
    let project: string | undefined;
    try {
      const created = await projectOn('rcmove', first.url);
      project = created.project;
      const namespace = created.namespace;
      const { role } = await credentialOf(namespace, 'dev-main');
      expect(await privilegesIn(first.name, role)).toBeGreaterThan(0);

      expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-'], { input: second.url }));
      // The new URL is a new generation of the Connection; its credential condition follows it.
      const moved = await credentialOf(namespace, 'dev-main');
      expect(moved.role).toBe(role);
      expect(await privilegesIn(second.name, role)).toBeGreaterThan(0);
      expect(await privilegesIn(first.name, role)).toBe(0);
      // So the role can go at deletion: nothing of it is left in either database.
      expectExit(await kubectl(['delete', 'connection', 'dev-main', '--namespace', namespace, '--wait=true', '--timeout=60s']));
      expect(await roleExists(role)).toBe(false);
      expect((await eventsOf(namespace, 'dev-main')).filter((e) => e.reason === 'DataPlaneRoleLeftBehind')).toEqual([]);
    } finally {
      await deleteProject(project);
      await first.drop();
      await second.drop();
    }
  });

  it('a Connection that never reached its database has no role and is let go at once, without a Warning', async () => {
    const closed = await postgresProxy();
    await closed.close();
    const url = new URL(adminUrl());
    url.port = String(closed.port);
    const project = uniqueName('rcnever');
    const namespace = `stk-${project}`;
    try {
      expectExit(await stk(['project', 'create', project]));
      expectExit(await stk(['env', 'create', '--project', project, 'dev']));
      expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-'], { input: url.toString() }));
      const unreachable = await eventually(
        async () => {
          const conn = await client.find<Conn>(Kinds.Connection, 'dev-main', namespace);
          return conn?.metadata.finalizers?.includes(FINALIZER) && conn.status?.conditions?.some((c) => c.type === 'Reachable' && c.status === 'False') ? conn : undefined;
        },
        { timeoutMs: 30_000, what: 'the operator to find dev-main unreachable' },
      );
      expect(unreachable.status?.conditions?.map((c) => c.type)).not.toContain('DataPlaneCredential');

      expectExit(await kubectl(['delete', 'connection', 'dev-main', '--namespace', namespace, '--wait=true', '--timeout=60s']));
      expect((await eventsOf(namespace, 'dev-main')).filter((e) => e.reason === 'DataPlaneRoleLeftBehind')).toEqual([]);
    } finally {
      await deleteProject(project);
    }
  });

  it('moving a Connection to another server never sends the new credentials to the old one; a Warning names the role left there', async () => {
    const db = await createTestDatabase('rcserver');
    const proxy = await postgresProxy();
    let project: string | undefined;
    try {
      // The "old server" is the same Postgres reached through another address (host:port).
      const old = new URL(db.url);
      old.port = String(proxy.port);
      const created = await projectOn('rcserver', old.toString());
      project = created.project;
      const namespace = created.namespace;
      const { role } = await credentialOf(namespace, 'dev-main');
      const before = proxy.connections();
      expect(before).toBeGreaterThan(0);

      expectExit(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-'], { input: db.url }));
      await credentialOf(namespace, 'dev-main');
      const warning = await eventually(async () => (await eventsOf(namespace, 'dev-main')).find((e) => e.reason === 'DataPlaneRoleLeftBehind'), {
        timeoutMs: 30_000,
        what: 'a DataPlaneRoleLeftBehind Warning on dev-main',
      });
      expect(warning.type).toBe('Warning');
      expect(warning.message).toContain(role);
      expect(warning.message).toContain(`127.0.0.1:${proxy.port}/${db.name}`);
      expect(proxy.connections()).toBe(before);
    } finally {
      await proxy.close();
      // The Connection is still there: its finalizer drops the role before the database goes.
      await deleteProject(project, true);
      await db.drop();
    }
  });
});
