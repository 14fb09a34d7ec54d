import postgres from 'postgres';
import { afterEach, describe, expect, test } from 'vitest';
import { ConflictError, UnavailableError } from '../../core/errors.ts';
import { applyPlan, DestructiveChangeError, listAppliedReleases, PlanStaleError, renderPlan, type SchemaIR } from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { converge, declare, planFor, snapshot, yaml } from './helpers.ts';

const v1 = yaml(`
  books:
    id: { generate: auto_increment }
    columns:
      title: { type: string, nullable: false }
      pages: { type: int }
      notes: { type: string }
`);

async function rowsOf(db: TestDatabase): Promise<unknown> {
  return db.sql`SELECT * FROM books ORDER BY id`;
}

describe('applyPlan', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  async function seeded(prefix: string): Promise<{ db: TestDatabase; old: SchemaIR }> {
    const db = await createTestDatabase(prefix);
    dbs.push(db);
    const old = declare(v1);
    await converge(db.sql, old);
    await db.sql`INSERT INTO books (title, pages, notes) VALUES ('Dune', 100, 'x'), ('Emma', NULL, NULL)`;
    return { db, old };
  }

  test('destructive steps are refused with each step and why; allowing one hazard by name is not enough for the other', async () => {
    // Given a plan that drops a column (deletes_data) and changes a type (correctness)
    const { db, old } = await seeded('allow');
    const next = declare(
      yaml(`
  books:
    id: { generate: auto_increment }
    columns:
      title: { type: string, nullable: false }
      pages: { type: string }
`),
    );
    const plan = await planFor(db.sql, next, { previous: old });
    const before = await snapshot(db);

    // When applied without force, then with only deletes_data allowed
    const refused = await applyPlan(db.sql, plan, { releaseId: 'r' }).catch((e: unknown) => e);
    const partlyAllowed = await applyPlan(db.sql, plan, { releaseId: 'r', allowHazards: ['deletes_data'] }).catch((e: unknown) => e);

    // Then both are refused, naming every blocked step and its hazard; nothing changed
    expect(refused).toBeInstanceOf(DestructiveChangeError);
    const err = refused as DestructiveChangeError;
    expect(err.reason).toBe('DestructiveChange');
    expect(err.steps.map((s) => [s.number, s.description, s.hazards.map((h) => h.kind)])).toEqual([
      [1, 'change type of books.pages from integer to text', ['correctness']],
      [2, 'drop column books.notes', ['deletes_data']],
    ]);
    expect(err.message).toContain('step 2, drop column books.notes: deletes_data (drops column books.notes and the data it holds)');
    expect((partlyAllowed as DestructiveChangeError).steps.map((s) => s.number)).toEqual([1]);
    expect(await snapshot(db)).toBe(before);

    // When both hazards are allowed by name, it applies
    await applyPlan(db.sql, plan, { releaseId: 'r', allowHazards: ['deletes_data', 'correctness'] });
    expect((await planFor(db.sql, next)).steps).toEqual([]);
  });

  test('hazards allowed at plan time are shown as such and carried to apply', async () => {
    const { db, old } = await seeded('allowplan');
    const next = declare(v1.replace('      notes: { type: string }\n', ''));
    const plan = await planFor(db.sql, next, { previous: old, allowHazards: ['deletes_data'] });
    expect(renderPlan(plan)).not.toContain('blocked:');
    await applyPlan(db.sql, plan, { releaseId: 'r' });
    expect((await listAppliedReleases(db.sql)).at(-1)?.allowedHazards).toEqual(['deletes_data']);
  });

  test('a step that fails half-way rolls back every step of the connection', async () => {
    // Given a plan whose first steps succeed and whose NOT NULL step meets a NULL: row "Emma" gets
    // its NULL back after planning (data changes do not make a plan stale; a NULL present at plan
    // time would have the step refused at plan time)
    const { db, old } = await seeded('rollback');
    await db.sql`UPDATE books SET pages = 1 WHERE pages IS NULL`;
    const next = declare(
      yaml(`
  books:
    id: { generate: auto_increment }
    columns:
      title: { type: string, nullable: false }
      pages: { type: int, nullable: false }
      notes: { type: string, default: none }
      isbn: { type: string, unique: true }
    indexes:
      - { columns: [title] }
`),
    );
    const plan = await planFor(db.sql, next, { previous: old });
    expect(plan.steps.map((s) => s.change.kind)).toEqual(['add_column', 'set_default', 'set_not_null', 'add_unique', 'create_index']);
    await db.sql`UPDATE books SET pages = NULL WHERE title = 'Emma'`;
    const before = await snapshot(db);
    const rows = await rowsOf(db);

    // When it is applied with force
    const err = await applyPlan(db.sql, plan, { releaseId: 'r', force: true }).catch((e: unknown) => e);

    // Then the error names the step and the SQLSTATE, and the catalog and data are exactly as before
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).reason).toBe('SchemaApplyFailed');
    expect((err as Error).message).toBe(
      'connection main: step 3 (set NOT NULL on books.pages) failed, nothing was applied: not_null_violation (SQLSTATE 23502) on books.pages',
    );
    expect(await snapshot(db)).toBe(before);
    expect(await rowsOf(db)).toEqual(rows);
    expect(await listAppliedReleases(db.sql)).toHaveLength(1);
  });

  test('adding a NOT NULL column without a default is refused at plan time on a table with rows, and safe on an empty one', async () => {
    const { db, old } = await seeded('notnull');
    const next = declare(v1.replace('      notes: { type: string }\n', '      notes: { type: string }\n      code: { type: string, nullable: false }\n'));
    const plan = await planFor(db.sql, next, { previous: old });
    expect(plan.steps.map((s) => [s.description, s.destructive, s.hazards.map((h) => h.kind)])).toEqual([
      ['add column books.code', true, ['cannot_apply', 'access_exclusive_lock']],
    ]);
    expect(plan.steps[0]?.refused).toBe(true);
    const before = await snapshot(db);
    // main let this plan fail at apply (23502) however often it was retried; now not even force runs it
    const err = await applyPlan(db.sql, plan, { releaseId: 'r', force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DestructiveChangeError);
    expect((err as DestructiveChangeError).reason).toBe('PlanRefused');
    expect((err as Error).message).toContain('books has rows: a NOT NULL column without a default cannot be added to them');
    expect(await snapshot(db)).toBe(before);

    // Given the same change on an empty table
    await db.sql`DELETE FROM books`;
    const onEmpty = await planFor(db.sql, next, { previous: old });
    expect(onEmpty.steps.map((s) => s.destructive)).toEqual([false]);
    await applyPlan(db.sql, onEmpty, { releaseId: 'r' });
  });

  test('a plan is refused when the database changed by hand after planning; nothing is applied', async () => {
    const { db, old } = await seeded('stale');
    const next = declare(v1.replace('      notes: { type: string }\n', '      notes: { type: string }\n      subtitle: { type: string }\n'));
    const plan = await planFor(db.sql, next, { previous: old });

    // When someone changes a managed table between plan and apply
    await db.sql`ALTER TABLE books ALTER COLUMN notes SET DEFAULT 'hand'`;
    const before = await snapshot(db);
    const err = await applyPlan(db.sql, plan, { releaseId: 'r' }).catch((e: unknown) => e);

    // Then the apply is refused and nothing changed
    expect(err).toBeInstanceOf(PlanStaleError);
    expect((err as PlanStaleError).reason).toBe('PlanStale');
    expect((err as PlanStaleError).plannedHash).toBe(plan.liveHash);
    expect(await snapshot(db)).toBe(before);
  });

  test('a change to a table Santokit does not manage does not make a plan stale', async () => {
    const { db, old } = await seeded('stale_unmanaged');
    await db.sql`CREATE TABLE other_tool (id int)`;
    const next = declare(v1.replace('      notes: { type: string }\n', '      notes: { type: string }\n      subtitle: { type: string }\n'));
    const plan = await planFor(db.sql, next, { previous: old });
    await db.sql`ALTER TABLE other_tool ADD COLUMN extra text`;
    await applyPlan(db.sql, plan, { releaseId: 'r' });
    expect((await planFor(db.sql, next)).steps).toEqual([]);
  });

  test('a lock that cannot be taken within lock_timeout fails the apply cleanly', async () => {
    const { db, old } = await seeded('locktimeout');
    const next = declare(v1.replace('      notes: { type: string }\n', '      notes: { type: string }\n      subtitle: { type: string }\n'));
    const plan = await planFor(db.sql, next, { previous: old });
    const before = await snapshot(db);

    // Given another session holding a lock on the table
    const other = postgres(db.url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = other.begin(async (tx) => {
      await tx`LOCK TABLE books IN ACCESS SHARE MODE`;
      locked();
      await released;
    });
    try {
      await isLocked;
      // When the plan is applied with a short lock timeout
      const err = await applyPlan(db.sql, plan, { releaseId: 'r', lockTimeoutMs: 200, statementTimeoutMs: 30_000 }).catch((e: unknown) => e);
      // Then it fails as a retryable dependency error naming the step
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as UnavailableError).reason).toBe('LockTimeout');
      expect((err as UnavailableError).retryable).toBe(true);
      expect((err as Error).message).toContain('step 1 (add column books.subtitle) failed, nothing was applied: lock_not_available (SQLSTATE 55P03)');
    } finally {
      release();
      await holder;
      await other.end();
    }
    expect(await snapshot(db)).toBe(before);
  });

  test('a statement running past statement_timeout fails the apply cleanly', async () => {
    const { db, old } = await seeded('stmttimeout');
    const next = declare(v1.replace('      notes: { type: string }\n', '      notes: { type: string }\n      subtitle: { type: string }\n'));
    const plan = await planFor(db.sql, next, { previous: old });
    const other = postgres(db.url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = other.begin(async (tx) => {
      await tx`LOCK TABLE books IN ACCESS SHARE MODE`;
      locked();
      await released;
    });
    try {
      await isLocked;
      // a lock wait counts towards statement_timeout: with a long lock timeout, the statement timeout fires
      const err = await applyPlan(db.sql, plan, { releaseId: 'r', lockTimeoutMs: 30_000, statementTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as UnavailableError).reason).toBe('StatementTimeout');
      expect((err as Error).message).toContain('query_canceled (SQLSTATE 57014)');
    } finally {
      release();
      await holder;
      await other.end();
    }
  });

  test('the release is recorded with the timeouts in force, in the same transaction, by numbered bookkeeping migrations', async () => {
    const db = await createTestDatabase('bookkeeping');
    dbs.push(db);
    const declared = declare(v1);
    const plan = await planFor(db.sql, declared);
    const first = await applyPlan(db.sql, plan, { releaseId: 'rel-a', ref: '0123abc', lockTimeoutMs: 1234, statementTimeoutMs: 5678 });
    const second = await applyPlan(db.sql, await planFor(db.sql, declared), { releaseId: 'rel-b' });

    expect(first.bookkeepingMigrations).toEqual([1, 2, 3]);
    expect(second.bookkeepingMigrations).toEqual([]);
    expect(await db.sql`SELECT id, name FROM santokit.schema_migrations ORDER BY id`).toEqual([
      { id: 1, name: 'applied_releases' },
      { id: 2, name: 'applied_releases_release_idx' },
      { id: 3, name: 'release_at' },
    ]);
    const releases = await listAppliedReleases(db.sql);
    expect(releases.map((r) => ({ id: r.releaseId, ref: r.ref, lock: r.lockTimeout, statement: r.statementTimeout, n: r.statements.length, forced: r.forced }))).toEqual([
      { id: 'rel-a', ref: '0123abc', lock: '1234ms', statement: '5678ms', n: 1, forced: false },
      { id: 'rel-b', ref: null, lock: '5s', statement: '5min', n: 0, forced: false },
    ]);
    expect(releases[0]?.planHash).toBe(plan.hash);
    // the timeouts were local to the transaction
    expect(await db.sql`SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`).toEqual([{ l: '0', s: '0' }]);
  });

  test('two appliers of the same plan: one applies, the other waits for the schema lock and is refused as stale', async () => {
    const { db, old } = await seeded('concurrent');
    const next = declare(v1.replace('      notes: { type: string }\n', '      notes: { type: string }\n      subtitle: { type: string }\n'));
    const plan = await planFor(db.sql, next, { previous: old });
    const results = await Promise.allSettled([applyPlan(db.sql, plan, { releaseId: 'a' }), applyPlan(db.sql, plan, { releaseId: 'b' })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.reason).toBeInstanceOf(PlanStaleError);
    expect(await listAppliedReleases(db.sql)).toHaveLength(2);
  });

  test('invalid timeouts are refused before anything runs', async () => {
    const db = await createTestDatabase('badtimeout');
    dbs.push(db);
    const plan = await planFor(db.sql, declare(v1));
    await expect(applyPlan(db.sql, plan, { releaseId: 'r', lockTimeoutMs: 0 })).rejects.toThrow('lockTimeoutMs must be a positive whole number');
    expect(await listAppliedReleases(db.sql)).toEqual([]);
  });
});
