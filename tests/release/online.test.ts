import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import {
  applyPlan,
  applyPlanOnline,
  checkDrift,
  declareSchema,
  dropInvalidIndexes,
  findInvalidIndexes,
  parseSchemaFiles,
  planLiveSchemaChanges,
  readReleaseAt,
  schemaOf,
  type SchemaIR,
} from '../../core/schema/index.ts';
import { isSantokitError } from '../../core/errors.ts';
import { eventually } from '../support/cluster.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { startDefaultPostgres } from './default-postgres.ts';

/**
 * Online mode and the lock estimate on real Postgres, through the schema engine's apply path (the
 * pipeline calls the same functions; `recovery.test.ts` drives them through stk).
 */

const declare = (text: string): SchemaIR => declareSchema(parseSchemaFiles([{ path: 'schema/app.yaml', text }])).main ?? schemaOf([]);

const itemsV1 = `version: 1
tables:
  items:
    id: { generate: auto_increment }
    columns:
      n: { type: int }
`;
const itemsIndexed = `${itemsV1}    indexes:
      - columns: [n]
`;

/**
 * A steady writer on its own connection, and a sampler that watches it from a third one: is it
 * waiting for a lock, and does it make progress while the index statement runs?
 */
async function watchWriterDuring(url: string, apply: () => Promise<unknown>) {
  const writer = postgres(url, { max: 1, onnotice: () => {} });
  const watcher = postgres(url, { max: 1, onnotice: () => {} });
  const pid = (await writer<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
  let running = true;
  let written = 0;
  let longest = 0;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      await writer`INSERT INTO items (n) VALUES (${written})`;
      longest = Math.max(longest, performance.now() - t);
      written++;
    }
  })();
  while (written < 20) await new Promise((r) => setTimeout(r, 5));
  let waitedForLock = 0;
  let progressedDuringBuild = 0;
  let buildSeen = 0;
  let done = false;
  const sampler = (async () => {
    let before: number | undefined;
    while (!done) {
      // Building: the index statement runs, not waiting for a lock itself (a plain CREATE INDEX may
      // wait a moment for the writer's insert in flight, which then completes: that is no progress
      // during the build).
      const rows = await watcher<{ writer_waits: boolean; building: boolean }[]>`
        SELECT bool_or(pid = ${pid} AND wait_event_type = 'Lock') AS writer_waits,
               bool_or(pid <> ${pid} AND state = 'active' AND query ILIKE 'CREATE INDEX%' AND wait_event_type IS DISTINCT FROM 'Lock') AS building
          FROM pg_stat_activity WHERE datname = current_database()`;
      const now = written;
      if (rows[0]!.writer_waits) waitedForLock++;
      if (rows[0]!.building) {
        buildSeen++;
        if (before !== undefined && now > before) progressedDuringBuild++;
        before = now;
      } else {
        before = undefined;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    await apply();
  } finally {
    done = true;
    await sampler;
    running = false;
    await loop;
    await writer.end();
    await watcher.end();
  }
  return { waitedForLock, progressedDuringBuild, buildSeen, longestStallMs: Math.round(longest) };
}

async function itemsTable(rows: number) {
  const db = await createTestDatabase('online_items');
  const plan = await planLiveSchemaChanges(db.sql, { declared: declare(itemsV1), connection: 'main' });
  await applyPlan(db.sql, plan, { releaseId: 'rel-0000000000000001' });
  await db.sql.unsafe(`INSERT INTO items (n) SELECT g FROM generate_series(1, ${rows}) g`);
  await db.sql.unsafe('ANALYZE items');
  return db;
}

describe('online schema changes', () => {
  it('writers keep writing while an index is built online, and wait for it in transactional mode', async () => {
    const db = await itemsTable(400_000);
    try {
      const previous = declare(itemsV1);
      const transactional = await watchWriterDuring(db.url, async () => {
        const plan = await planLiveSchemaChanges(db.sql, { declared: declare(itemsIndexed), previous, connection: 'main' });
        await applyPlan(db.sql, plan, { releaseId: 'rel-0000000000000002' });
      });
      // Back to no index, then the same change online.
      await db.sql.unsafe('DROP INDEX items_n_idx');
      const online = await watchWriterDuring(db.url, async () => {
        const plan = await planLiveSchemaChanges(db.sql, { declared: declare(itemsIndexed), previous, connection: 'main' });
        const result = await applyPlanOnline(db.sql, plan, { releaseId: 'rel-0000000000000003' });
        expect(result.statements).toEqual(['CREATE INDEX CONCURRENTLY "items_n_idx" ON "public"."items" ("n")']);
      });
      console.log(`writer's longest stall: transactional ${transactional.longestStallMs} ms, online ${online.longestStallMs} ms`);
      expect(transactional.buildSeen).toBeGreaterThan(0);
      expect(transactional.waitedForLock).toBeGreaterThan(0);
      expect(transactional.progressedDuringBuild).toBe(0);
      expect(online.buildSeen).toBeGreaterThan(1);
      expect(online.waitedForLock).toBe(0);
      expect(online.progressedDuringBuild).toBeGreaterThan(0);
      const [idx] = await db.sql<{ valid: boolean }[]>`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'items_n_idx'::regclass`;
      expect(idx?.valid).toBe(true);
      expect((await readReleaseAt(db.sql, 'main'))).toMatchObject({ releaseId: 'rel-0000000000000003', mode: 'online' });
      expect((await checkDrift(db.sql, declare(itemsIndexed))).differences).toEqual([]);
    } finally {
      await db.drop();
    }
  });

  it('an interrupted online apply resumes where it stopped; an INVALID index of a failed concurrent build is rebuilt', async () => {
    const db = await createTestDatabase('online_resume');
    try {
      const v1 = declare(`version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false }
`);
      await applyPlan(db.sql, await planLiveSchemaChanges(db.sql, { declared: v1, connection: 'main' }), { releaseId: 'rel-00000000000000a1' });
      await db.sql`INSERT INTO users (id, email) VALUES ('u1', 'a@example.com'), ('u2', 'a@example.com'), ('u3', 'b@example.com')`;
      const v2Text = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false }
    indexes:
      - columns: [email]
  orders:
    id: { generate: ulid }
    columns:
      user_id: { type: string, references: { table: users } }
`;
      const v2 = declare(v2Text);
      // Interrupted after its first two statements (as a crash would): those stay applied.
      const plan = await planLiveSchemaChanges(db.sql, { declared: v2, previous: v1, connection: 'main' });
      const seen: string[] = [];
      const interrupted = await applyPlanOnline(db.sql, plan, {
        releaseId: 'rel-00000000000000a2',
        onStatement: (unit, i) => {
          seen.push(unit.sql.split(/\s+/).slice(0, 4).join(' '));
          if (i === 2) throw new Error('interrupted');
        },
      }).catch((e: unknown) => e);
      expect(isSantokitError(interrupted)).toBe(true);
      expect(seen).toEqual(['CREATE TABLE "public"."orders" (', 'CREATE INDEX CONCURRENTLY "users_email_idx"', 'ALTER TABLE "public"."orders" ADD']);
      const tables = await db.sql<{ t: string }[]>`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`;
      expect(tables.map((r) => r.t)).toEqual(['orders', 'users']);
      expect((await readReleaseAt(db.sql, 'main'))?.releaseId).toBe('rel-00000000000000a1');

      // The next run plans only what is left, and finishes.
      const rest = await planLiveSchemaChanges(db.sql, { declared: v2, previous: v1, connection: 'main' });
      expect(rest.steps.map((s) => s.change.kind)).toEqual(['add_foreign_key']);
      const resumed = await applyPlanOnline(db.sql, rest, { releaseId: 'rel-00000000000000a2' });
      expect(resumed.statements).toEqual([`${rest.steps[0]!.sql} NOT VALID`, 'ALTER TABLE "public"."orders" VALIDATE CONSTRAINT "orders_user_id_fkey"']);
      expect((await checkDrift(db.sql, v2)).differences).toEqual([]);
      expect(await readReleaseAt(db.sql, 'main')).toMatchObject({ releaseId: 'rel-00000000000000a2', mode: 'online' });

      // A unique key over duplicates is refused at plan time, before anything is built.
      const v3 = declare(v2Text.replace('email: { type: string, nullable: false }', 'email: { type: string, nullable: false, unique: true }'));
      const refused = await applyPlanOnline(db.sql, await planLiveSchemaChanges(db.sql, { declared: v3, previous: v2, connection: 'main' }), { releaseId: 'rel-00000000000000a3' }).catch((e: unknown) => e);
      expect(isSantokitError(refused) && refused.reason).toBe('PlanRefused');
      expect(await findInvalidIndexes(db.sql, ['users'])).toEqual([]);
      await db.sql`DELETE FROM users WHERE id = 'u2'`;

      // A concurrent build interrupted half-way leaves an INVALID index: a writer's open transaction
      // holds ROW EXCLUSIVE on users, so the build (its catalog entry already committed) times out
      // waiting for it.
      const writer = await db.sql.reserve();
      try {
        await writer`BEGIN`;
        await writer`LOCK TABLE users IN ROW EXCLUSIVE MODE`;
        const failed = await applyPlanOnline(db.sql, await planLiveSchemaChanges(db.sql, { declared: v3, previous: v2, connection: 'main' }), { releaseId: 'rel-00000000000000a3', lockTimeoutMs: 200, lockRetries: 1 }).catch((e: unknown) => e);
        expect(isSantokitError(failed) && failed.reason).toBe('LockTimeout');
        expect(await findInvalidIndexes(db.sql, ['users'])).toEqual([{ table: 'users', index: 'users_email_key' }]);
        await writer`COMMIT`;
      } finally {
        await writer`ROLLBACK`.catch(() => {});
        writer.release();
      }

      // The leftover is dropped before planning (as the pipeline does) and built again.
      expect(await dropInvalidIndexes(db.sql, ['orders', 'users'])).toEqual(['users_email_key']);
      await applyPlanOnline(db.sql, await planLiveSchemaChanges(db.sql, { declared: v3, previous: v2, connection: 'main' }), { releaseId: 'rel-00000000000000a3' });
      expect((await checkDrift(db.sql, v3)).differences).toEqual([]);
      expect(await findInvalidIndexes(db.sql, ['orders', 'users'])).toEqual([]);
      const cons = await db.sql<{ name: string; valid: boolean }[]>`SELECT conname AS name, convalidated AS valid FROM pg_constraint WHERE conrelid IN ('users'::regclass, 'orders'::regclass) AND contype IN ('u', 'f') ORDER BY 1`;
      expect(cons).toEqual([{ name: 'orders_user_id_fkey', valid: true }, { name: 'users_email_key', valid: true }]);
    } finally {
      await db.drop();
    }
  });

  it('a lock timeout is retried with backoff, then reported by name', async () => {
    const db = await itemsTable(10);
    const holder = await db.sql.reserve();
    try {
      const withAge = declare(`${itemsV1}      age: { type: int }\n`);
      const plan = await planLiveSchemaChanges(db.sql, { declared: withAge, previous: declare(itemsV1), connection: 'main' });
      // A transaction holds a lock that ALTER TABLE must wait for, for as long as the test says:
      // released on what the test sees, never after a time that a slow machine could outlast.
      const hold = async () => {
        await holder`BEGIN`;
        await holder`SELECT count(*) FROM items`;
      };
      /** The start time of the ALTER TABLE that waits for the holder's lock now, if one does. */
      const waitingAlter = async () =>
        (await db.sql<{ started: string }[]>`SELECT query_start::text AS started FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE 'ALTER TABLE%'`)[0]?.started;

      // Held longer than all attempts: reported by name, nothing applied.
      await hold();
      const err = await applyPlanOnline(db.sql, plan, { releaseId: 'rel-00000000000000b1', lockTimeoutMs: 100, lockRetries: 3, retryBackoffMs: 50 }).catch((e: unknown) => e);
      expect(isSantokitError(err) && err.reason).toBe('LockTimeout');
      expect(await readReleaseAt(db.sql, 'main')).toMatchObject({ releaseId: 'rel-0000000000000001' });
      await holder`COMMIT`;

      // Held until an attempt has timed out and the next one waits: that one (or a later one) gets the lock.
      await hold();
      const applying = applyPlanOnline(db.sql, plan, { releaseId: 'rel-00000000000000b1', lockTimeoutMs: 100, lockRetries: 8, retryBackoffMs: 100 });
      // (awaited below; a failure while the test still waits must not go unhandled meanwhile)
      applying.catch(() => undefined);
      const first = await eventually(waitingAlter, { timeoutMs: 30_000, intervalMs: 10, what: 'the first attempt to wait for the lock' });
      await eventually(async () => {
        const now = await waitingAlter();
        return now !== undefined && now !== first ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 10, what: 'a later attempt to wait for the lock' });
      await holder`COMMIT`;
      const result = await applying;
      expect(result.retried).toBeGreaterThan(0);
      expect((await checkDrift(db.sql, withAge)).differences).toEqual([]);
    } finally {
      await holder`ROLLBACK`.catch(() => {});
      holder.release();
      await db.drop();
    }
  });

  it('two online applies of one plan: one applies, the other waits for the schema lock and is refused as stale', async () => {
    const db = await itemsTable(1_000);
    try {
      const plan = await planLiveSchemaChanges(db.sql, { declared: declare(itemsIndexed), previous: declare(itemsV1), connection: 'main' });
      const results = await Promise.allSettled([applyPlanOnline(db.sql, plan, { releaseId: 'rel-00000000000000d1' }), applyPlanOnline(db.sql, plan, { releaseId: 'rel-00000000000000d2' })]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected.map((r) => (isSantokitError(r.reason) ? r.reason.reason : String(r.reason)))).toEqual(['PlanStale']);
      expect((await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM santokit.applied_releases WHERE release_id LIKE 'rel-00000000000000d%'`)[0]!.n).toBe(1);
    } finally {
      await db.drop();
    }
  });

  it('on a default Postgres, a 2,500-table first apply is refused before any DDL in transactional mode and succeeds online', async () => {
    const server = await startDefaultPostgres();
    const sql = postgres(server.url, { max: 2, onnotice: () => {} });
    try {
      const tables = Array.from({ length: 2_500 }, (_, i) => `  t${String(i).padStart(4, '0')}:\n    id: { generate: ulid }\n    columns:\n      v: { type: string }\n`).join('');
      const declared = declare(`version: 1\ntables:\n${tables}`);
      const plan = await planLiveSchemaChanges(sql, { declared, connection: 'main' });
      expect(plan.steps.length).toBe(2_500);
      const started = performance.now();
      const refused = await applyPlan(sql, plan, { releaseId: 'rel-00000000000000c1' }).catch((e: unknown) => e);
      const refusedAfterMs = performance.now() - started;
      expect(isSantokitError(refused) && refused.reason).toBe('InsufficientLocks');
      const message = (refused as Error).message;
      expect(message).toContain('max_locks_per_transaction 64');
      expect(message).toMatch(/needs about \d{5} locks/);
      expect((refused as { hint?: string }).hint).toMatch(/online mode/);
      const created = (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace`)[0]!.n;
      expect(created).toBe(0);
      console.log(`refused up front after ${Math.round(refusedAfterMs)} ms`);

      const t = performance.now();
      await applyPlanOnline(sql, plan, { releaseId: 'rel-00000000000000c1' });
      console.log(`2,500 tables applied online in ${Math.round(performance.now() - t)} ms`);
      const tablesNow = (await sql<{ m: number }[]>`SELECT count(*)::int AS m FROM pg_tables WHERE schemaname = 'public'`)[0]!.m;
      expect(tablesNow).toBe(2_500);
      expect(await readReleaseAt(sql, 'main')).toMatchObject({ releaseId: 'rel-00000000000000c1', mode: 'online' });
    } finally {
      await sql.end();
      await server.stop();
    }
  }, 180_000);
});
