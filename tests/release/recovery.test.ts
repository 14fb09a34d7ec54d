import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { Annotations, Kinds, type Environment } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { SCHEMA_LOCK_KEY } from '../../core/schema/bookkeeping.ts';
import { adminClient, eventually, expectExit, kubectl, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { releaseManifest } from '../../cli/manifests.ts';
import { buildRelease } from '../../core/release/build.ts';
import { readRepoAtRef } from '../../core/release/source.ts';
import { findInvalidIndexes } from '../../core/schema/online.ts';

/**
 * A release over two connections that fails (or whose operator dies) half-way never leaves the
 * environment stuck (issue 16): each database records the release it is at, the gates judge it by
 * that, and a retry — or the next operator — finishes the rest. Also the two-phase mode and the
 * online mode through stk. Each `it` has its own operator, project and databases.
 */

const client = await adminClient();

const analyticsV1 = `version: 1
tables:
  events:
    connection: analytics
    id: { generate: auto_increment }
    columns:
      kind: { type: string, nullable: false }
`;
const analyticsV2 = `${analyticsV1}      at: { type: timestamp }
`;
const mainV1 = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false }
`;
const mainV2 = mainV1.replace('email: { type: string, nullable: false }', 'email: { type: string, nullable: false, unique: true }');
const permissions = 'tables:\n  users:\n    select: { roles: [admin] }\n';

interface Setup {
  operator: OperatorProcess;
  project: string;
  namespace: string;
  repo: TestRepo;
  main: TestDatabase;
  analytics: TestDatabase;
  target: string[];
  v1: string;
  v2: string;
  env(): Promise<Environment & KubeObject>;
  cleanup(): Promise<void>;
}

/** An environment `dev` with connections analytics and main, at release v1; v2 committed, not applied. */
async function setup(name: string, operatorEnv: NodeJS.ProcessEnv = {}): Promise<Setup> {
  const operator = await startOperator({ leaseName: uniqueName(`lease-${name}`), env: operatorEnv });
  const project = uniqueName(name);
  const namespace = `stk-${project}`;
  const main = await createTestDatabase(`${name}_main`);
  const analytics = await createTestDatabase(`${name}_analytics`);
  const s: Setup = {
    operator,
    project,
    namespace,
    repo: await createTestRepo(),
    main,
    analytics,
    target: ['--project', project, '--env', 'dev'],
    v1: '',
    v2: '',
    env: () => client.get<Environment & KubeObject>(Kinds.Environment, 'dev', namespace),
    async cleanup() {
      await s.operator.stop('SIGKILL');
      await main.drop();
      await analytics.drop();
    },
  };
  await waitForOperatorReady(operator);
  expectExit(await stk(['project', 'create', project]));
  expectExit(await stk(['env', 'create', '--project', project, 'dev']));
  expectExit(await stk(['connections', 'set', ...s.target, '--name', 'main', '--db-url', main.url]));
  expectExit(await stk(['connections', 'set', ...s.target, '--name', 'analytics', '--db-url', analytics.url]));
  s.v1 = await s.repo.commit({ 'schema/main.yaml': mainV1, 'schema/analytics.yaml': analyticsV1, 'config/permissions.yaml': permissions }, 'v1');
  expectExit(await stk(['apply', ...s.target, '--ref', s.v1, '--repo', s.repo.dir]));
  s.v2 = await s.repo.commit({ 'schema/main.yaml': mainV2, 'schema/analytics.yaml': analyticsV2 }, 'v2: events.at, unique users.email');
  return s;
}

/** The release of the request stk made (the annotation), while the operator has not answered it. */
const requested = (env: Environment & KubeObject) => (JSON.parse(env.metadata.annotations?.[Annotations.request] ?? '{}') as { release?: string }).release;
const releaseIdOf = (stdout: string) => /^releaseId=(rel-[0-9a-f]{16})$/m.exec(stdout)?.[1];
const hasColumn = async (sql: postgres.Sql, table: string, column: string) =>
  (await sql`SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ${table} AND column_name = ${column}`).length === 1;
const hasConstraint = async (sql: postgres.Sql, name: string) => (await sql`SELECT 1 FROM pg_constraint WHERE conname = ${name}`).length === 1;
const releaseAt = async (sql: postgres.Sql, connection: string) => (await sql<{ release_id: string; mode: string }[]>`SELECT release_id, mode FROM santokit.release_at WHERE connection = ${connection}`)[0];
/** How many times DDL of the release ran on the database (a run with nothing to change records none). */
const appliedCount = async (sql: postgres.Sql, release: string) => (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM santokit.applied_releases WHERE release_id = ${release}`)[0]!.n;
const preparedIn = async (sql: postgres.Sql) => (await sql<{ gid: string }[]>`SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid`).map((r) => r.gid);

// Each case sets up its own operator, project and databases through stk: slow on a loaded machine.
describe('release pipeline: never stuck after a partial failure', { timeout: 300_000 }, () => {
  it('a unique key over duplicates on main is refused before any connection changes, naming main and what to fix (no --force); once the data is fixed the same apply finishes', async () => {
    const s = await setup('refused');
    try {
      const v1Release = (await s.env()).status!.currentRelease!;
      await s.main.sql`INSERT INTO users (id, email) VALUES ('u1', 'a@example.com'), ('u2', 'a@example.com')`;
      const refused = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir]);
      expectExit(refused, 2);
      expect(refused.stderr).toContain('PlanRefused');
      expect(refused.stderr).toMatch(/connection main: step 1 \(add unique constraint users_email_key[^\n]*cannot_apply: users \(email\) already holds duplicate values/);
      expect(refused.stderr).toMatch(/nothing was applied on any connection/);
      expect(refused.stderr).toMatch(/what to do: fix the data/);
      expect(refused.stderr).not.toMatch(/--force|re-run with force/i);
      // planned everywhere before anything applied: analytics is untouched
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(false);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(false);
      expect(await releaseAt(s.analytics.sql, 'analytics')).toMatchObject({ release_id: v1Release });
      expect(await releaseAt(s.main.sql, 'main')).toMatchObject({ release_id: v1Release });
      const env = await s.env();
      expect(env.status?.currentRelease).toBe(v1Release);
      expect(env.status?.connections).toEqual([
        expect.objectContaining({ name: 'analytics', release: v1Release, state: 'Behind' }),
        expect.objectContaining({ name: 'main', release: v1Release, state: 'Failed', reason: 'PlanRefused', failedStep: expect.stringMatching(/^step 1 \(add unique constraint users_email_key/) }),
      ]);
      expect(env.status?.lastRequest).toMatchObject({ outcome: 'Failed', reason: 'PlanRefused', connection: 'main', retryable: false });
      expect(env.status?.lastRequest?.message).not.toMatch(/--force/);

      await s.main.sql`DELETE FROM users WHERE id = 'u2'`;
      const retried = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir]);
      expectExit(retried);
      expect(retried.stdout).toMatch(/^apply analytics: succeeded/m);
      expect(retried.stdout).toMatch(/^apply main: succeeded/m);
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(true);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(true);
      const v2Release = releaseIdOf(retried.stdout)!;
      expect((await s.env()).status?.currentRelease).toBe(v2Release);
    } finally {
      await s.cleanup();
    }
  });

  it('a lock held on main makes its DDL time out after analytics committed; once the lock is released the same apply finishes without --force', async () => {
    const s = await setup('partial');
    const holder = await s.main.sql.reserve();
    try {
      const v1Release = (await s.env()).status!.currentRelease!;
      // Reads keep working, but main's ALTER TABLE waits for this lock until its lock_timeout
      // (DEFAULT_LOCK_TIMEOUT_MS, 5 s): a genuine apply-time failure after analytics committed.
      await holder`BEGIN`;
      await holder`LOCK TABLE users IN ACCESS SHARE MODE`;
      const failed = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir]);
      expectExit(failed, 3);
      expect(failed.stderr).toContain('LockTimeout');
      expect(failed.stderr).toMatch(/connection main: step 1 \(add unique constraint users_email_key/);
      expect(failed.stderr).not.toMatch(/--force/);
      // analytics committed, main has nothing of the release; the old release keeps serving
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(true);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(false);
      const env = await s.env();
      expect(env.status?.currentRelease).toBe(v1Release);
      const v2Release = env.status!.lastRequest!.release;
      expect(v2Release).not.toBe(v1Release);
      expect(env.status?.connections).toEqual([
        { name: 'analytics', release: v2Release, mode: 'transactional', state: 'AtTarget' },
        expect.objectContaining({ name: 'main', release: v1Release, state: 'Failed', reason: 'LockTimeout', failedStep: expect.stringMatching(/^step 1 \(add unique constraint users_email_key/) }),
      ]);
      expect(failed.stdout).toMatch(new RegExp(`^connection analytics: at ${v2Release} \\(at the release\\)$`, 'm'));
      expect(failed.stdout).toMatch(new RegExp(`^connection main: at ${v1Release} \\(failed\\): step 1 \\(add unique constraint users_email_key .*\\(LockTimeout\\)$`, 'm'));
      expect(env.status?.lastRequest).toMatchObject({ outcome: 'Failed', reason: 'LockTimeout', connection: 'main' });
      expect(await releaseAt(s.analytics.sql, 'analytics')).toMatchObject({ release_id: v2Release });
      expect(await releaseAt(s.main.sql, 'main')).toMatchObject({ release_id: v1Release });
      // drift judges analytics by the release it is at: nothing drifted
      const drift = await stk(['schema', 'drift', ...s.target, '--json']);
      expectExit(drift);
      expect(JSON.parse(drift.stdout)).toMatchObject({ drifted: false, differences: [] });

      await holder`COMMIT`;
      const retried = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir]);
      expectExit(retried);
      expect(releaseIdOf(retried.stdout)).toBe(v2Release);
      expect(retried.stdout).toMatch(/^apply analytics: skipped: nothing to change$/m);
      expect(retried.stdout).toMatch(/^apply main: succeeded/m);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(true);
      const after = await s.env();
      expect(after.status?.currentRelease).toBe(v2Release);
      expect(after.status?.connections).toEqual([
        { name: 'analytics', release: v2Release, mode: 'transactional', state: 'AtTarget' },
        { name: 'main', release: v2Release, mode: 'transactional', state: 'AtTarget' },
      ]);
      expect(after.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });

      // Idempotent: the same apply again changes nothing and records no DDL.
      const counts = [await appliedCount(s.analytics.sql, v2Release), await appliedCount(s.main.sql, v2Release)];
      expect(counts).toEqual([1, 1]);
      expectExit(await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir]));
      expect([await appliedCount(s.analytics.sql, v2Release), await appliedCount(s.main.sql, v2Release)]).toEqual(counts);
    } finally {
      await holder`ROLLBACK`.catch(() => {});
      holder.release();
      await s.cleanup();
    }
  });

  it('the operator killed between the two connections\' commits: the next operator finishes the request', async () => {
    const s = await setup('killed');
    const holder = postgres(s.main.url, { max: 1, onnotice: () => {} });
    try {
      // Hold main's schema lock: the apply commits analytics (sorted first), then waits on main.
      await holder`SELECT pg_advisory_lock(${SCHEMA_LOCK_KEY}::int8)`;
      const pending = stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--timeout', '120']);
      // The state the kill must fall into: analytics committed at v2, and a session waiting for
      // main's schema lock. (The waiter alone is no proof: the operator's grants for the data
      // plane take the same lock, so a probe of the Connection can be that waiter too.)
      await eventually(
        async () =>
          (await s.main.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).length > 0 &&
          (await hasColumn(s.analytics.sql, 'events', 'at'))
            ? true
            : undefined,
        { timeoutMs: 60_000, intervalMs: 50, what: 'analytics to commit and the apply to wait for main\'s schema lock' },
      );
      await s.operator.stop('SIGKILL');
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(true);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(false);
      const env = await s.env();
      const v2Release = requested(env)!;
      expect(v2Release).toMatch(/^rel-/);
      expect(env.status?.currentRelease).not.toBe(v2Release);
      expect(await releaseAt(s.analytics.sql, 'analytics')).toMatchObject({ release_id: v2Release });
      await holder`SELECT pg_advisory_unlock(${SCHEMA_LOCK_KEY}::int8)`;

      s.operator = await startOperator({ leaseName: uniqueName('lease-killed-2') });
      const res = await pending;
      expectExit(res);
      expect(releaseIdOf(res.stdout)).toBe(v2Release);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(true);
      expect((await s.env()).status?.currentRelease).toBe(v2Release);
      expect(await releaseAt(s.main.sql, 'main')).toMatchObject({ release_id: v2Release });
      expect(await appliedCount(s.analytics.sql, v2Release)).toBe(1);
    } finally {
      await holder.end();
      await s.cleanup();
    }
  });

  it('two-phase: a failure on one connection changes none of them', async () => {
    const s = await setup('twophase-fail');
    const holder = await s.main.sql.reserve();
    try {
      const v1Release = (await s.env()).status!.currentRelease!;
      // Refused at plan time: nothing is prepared anywhere.
      await s.main.sql`INSERT INTO users (id, email) VALUES ('u1', 'a@example.com'), ('u2', 'a@example.com')`;
      const refused = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--mode', 'two-phase']);
      expectExit(refused, 2);
      expect(refused.stderr).toContain('PlanRefused');
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(false);
      await s.main.sql`DELETE FROM users WHERE id = 'u2'`;

      // An apply-time failure on main after analytics prepared: analytics' transaction is rolled back.
      await holder`BEGIN`;
      await holder`LOCK TABLE users IN ACCESS SHARE MODE`;
      const failed = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--mode', 'two-phase']);
      expectExit(failed, 3);
      expect(failed.stderr).toContain('LockTimeout');
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(false);
      expect(await preparedIn(s.analytics.sql)).toEqual([]);
      expect(await preparedIn(s.main.sql)).toEqual([]);
      expect(await releaseAt(s.analytics.sql, 'analytics')).toMatchObject({ release_id: v1Release });
      const env = await s.env();
      expect(env.status?.connections).toEqual([
        expect.objectContaining({ name: 'analytics', release: v1Release, state: 'Behind' }),
        expect.objectContaining({ name: 'main', release: v1Release, state: 'Failed', reason: 'LockTimeout' }),
      ]);
      await holder`COMMIT`;
      const ok = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--mode', 'two-phase']);
      expectExit(ok);
      const v2Release = releaseIdOf(ok.stdout)!;
      expect(await releaseAt(s.analytics.sql, 'analytics')).toEqual({ release_id: v2Release, mode: 'two-phase' });
      expect(await releaseAt(s.main.sql, 'main')).toEqual({ release_id: v2Release, mode: 'two-phase' });
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(true);
    } finally {
      await holder`ROLLBACK`.catch(() => {});
      holder.release();
      await s.cleanup();
    }
  });

  it('two-phase: the operator killed between PREPARE and COMMIT; the next one commits the in-doubt transactions', async () => {
    const s = await setup('twophase-kill', { SANTOKIT_TEST_PAUSE_AT: 'two-phase-prepared' });
    try {
      const pending = stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--mode', 'two-phase', '--timeout', '120']);
      await eventually(async () => ((await preparedIn(s.analytics.sql)).length === 1 && (await preparedIn(s.main.sql)).length === 1 ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: 'both connections to be prepared',
      });
      await s.operator.stop('SIGKILL');
      const v2Release = requested(await s.env())!;
      expect(await preparedIn(s.analytics.sql)).toEqual([`santokit.${v2Release}.analytics`]);
      expect(await preparedIn(s.main.sql)).toEqual([`santokit.${v2Release}.main`]);
      // prepared, not committed: nothing of the release is visible yet
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(false);

      s.operator = await startOperator({ leaseName: uniqueName('lease-twophase-2') });
      const res = await pending;
      expectExit(res);
      expect(await preparedIn(s.analytics.sql)).toEqual([]);
      expect(await preparedIn(s.main.sql)).toEqual([]);
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(true);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(true);
      expect(await releaseAt(s.main.sql, 'main')).toEqual({ release_id: v2Release, mode: 'two-phase' });
      expect((await s.env()).status?.currentRelease).toBe(v2Release);
    } finally {
      await s.cleanup();
    }
  });

  it('online mode through stk: the plan names the statements outside the transaction; the index is built concurrently', async () => {
    const s = await setup('online');
    try {
      const dry = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--mode', 'online', '--dry-run']);
      expectExit(dry);
      expect(dry.stdout).toMatch(/mode: online — 2 statement\(s\), 1 outside any transaction/);
      expect(dry.stdout).toMatch(/outside the transaction: CREATE UNIQUE INDEX CONCURRENTLY "users_email_key"/);
      const transactional = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--dry-run']);
      expect(transactional.stdout).toMatch(/mode: transactional — every step in one transaction/);
      const res = await stk(['apply', ...s.target, '--ref', s.v2, '--repo', s.repo.dir, '--mode', 'online']);
      expectExit(res);
      const id = releaseIdOf(res.stdout)!;
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(true);
      expect(await releaseAt(s.main.sql, 'main')).toEqual({ release_id: id, mode: 'online' });
      const [stmts] = await s.main.sql<{ statements: string[] }[]>`SELECT statements FROM santokit.applied_releases WHERE release_id = ${id}`;
      expect(stmts!.statements[0]).toMatch(/^CREATE UNIQUE INDEX CONCURRENTLY/);
      expect((await s.env()).status?.currentRelease).toBe(id);
    } finally {
      await s.cleanup();
    }
  });

  it('GitOps: spec.release with spec.applyMode online; a refusal on main is Stalled naming it, and retried until the data is fixed', async () => {
    const s = await setup('gitops', { SANTOKIT_DRIFT_INTERVAL: '5' });
    try {
      const v1Release = (await s.env()).status!.currentRelease!;
      // The Release manifest a GitOps repository holds (what `stk apply --emit` writes), applied with
      // kubectl apply — which drops its null fields.
      const built = buildRelease(await readRepoAtRef(s.repo.dir, s.v2), { project: s.project });
      expectExit(await kubectl(['apply', '-f', '-'], { input: JSON.stringify(releaseManifest(built, s.namespace).release) }));
      await s.main.sql`INSERT INTO users (id, email) VALUES ('u1', 'a@example.com'), ('u2', 'a@example.com')`;
      expectExit(await kubectl(['patch', 'environment', 'dev', '-n', s.namespace, '--type', 'merge', '-p', JSON.stringify({ spec: { release: built.id, applyMode: 'online' } })]));

      const stalled = await eventually(
        async () => {
          const env = await s.env();
          const c = env.status?.conditions?.find((x) => x.type === 'Stalled');
          return c?.status === 'True' ? { env, c } : undefined;
        },
        { timeoutMs: 120_000, what: 'the environment to stall on main' },
      );
      // Refused at plan time, before any connection changed: analytics is untouched, nothing was built on main.
      expect(stalled.c.reason).toBe('PlanRefused:main');
      expect(stalled.c.message).toMatch(/connection main: step 1 \(add unique constraint users_email_key[^\n]*duplicate values/);
      expect(stalled.c.message).not.toMatch(/--force/);
      expect(stalled.env.status?.currentRelease).toBe(v1Release);
      expect(stalled.env.status?.connections).toEqual([
        expect.objectContaining({ name: 'analytics', release: v1Release, state: 'Behind' }),
        expect.objectContaining({ name: 'main', release: v1Release, state: 'Failed', reason: 'PlanRefused', failedStep: expect.stringMatching(/^step 1 /) }),
      ]);
      expect(await hasColumn(s.analytics.sql, 'events', 'at')).toBe(false);
      expect(await findInvalidIndexes(s.main.sql, ['users'])).toEqual([]);

      // Data fixed: no spec change needed; the next retry (every drift interval) applies and serves the release.
      await s.main.sql`DELETE FROM users WHERE id = 'u2'`;
      await eventually(async () => ((await s.env()).status?.currentRelease === built.id ? true : undefined), { timeoutMs: 120_000, what: 'the release to be served' });
      expect(await findInvalidIndexes(s.main.sql, ['users'])).toEqual([]);
      expect(await hasConstraint(s.main.sql, 'users_email_key')).toBe(true);
      expect(await releaseAt(s.analytics.sql, 'analytics')).toEqual({ release_id: built.id, mode: 'online' });
      expect(await releaseAt(s.main.sql, 'main')).toEqual({ release_id: built.id, mode: 'online' });
      expect((await s.env()).status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ status: 'True' });
    } finally {
      await s.cleanup();
    }
  });
});
