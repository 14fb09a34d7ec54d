import { afterEach, describe, expect, test } from 'vitest';
import { applyPlan, checkDrift, renderPlan } from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { converge, declare, expectOracle, planFor, stepsText, yaml } from './helpers.ts';

const before = yaml(`
  users:
    columns:
      name: { type: string }
      email: { type: string, nullable: false, unique: true }
    indexes:
      - { columns: [email, name] }
  posts:
    columns:
      author_id: { type: string, references: { table: users, column: email, onDelete: cascade } }
      body: { type: string }
`);

describe('renames through previousNames', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  test('a renamed column keeps its data; constraints and indexes on it follow the new name', async () => {
    // Given rows in users and posts
    const db = await createTestDatabase('rename');
    dbs.push(db);
    const old = declare(before);
    await converge(db.sql, old);
    await db.sql`INSERT INTO users (id, name, email) VALUES ('u1', 'Ann', 'ann@example.com')`;
    await db.sql`INSERT INTO posts (id, author_id, body) VALUES ('p1', 'ann@example.com', 'hello')`;

    // When name → full_name, email → contact_email and posts.author_id → writer_id are declared with previousNames
    const next = declare(
      yaml(`
  users:
    columns:
      full_name: { type: string, previousNames: [name] }
      contact_email: { type: string, nullable: false, unique: true, previousNames: [email] }
    indexes:
      - { columns: [contact_email, full_name] }
  posts:
    columns:
      writer_id: { type: string, previousNames: [author_id], references: { table: users, column: contact_email, onDelete: cascade } }
      body: { type: string }
`),
    );
    const plan = await planFor(db.sql, next, { previous: old });

    // Then the plan only renames: safe, no drop, no add
    expect(plan.steps.map((s) => s.description)).toEqual([
      'rename column posts.author_id to writer_id',
      'rename column users.name to full_name',
      'rename column users.email to contact_email',
      'rename constraint posts_author_id_fkey of posts to posts_writer_id_fkey',
      'rename constraint users_email_key of users to users_contact_email_key',
      'rename index users_email_name_idx of users to users_contact_email_full_name_idx',
    ]);
    expect(plan.steps.some((s) => s.destructive)).toBe(false);
    expect(stepsText(renderPlan(plan))).toContain('ALTER TABLE "public"."users" RENAME COLUMN "name" TO "full_name";');

    await applyPlan(db.sql, plan, { releaseId: 'r2' });

    // and the data is still there under the new names, the key still cascades
    expect(await db.sql`SELECT id, full_name, contact_email FROM users`).toEqual([{ id: 'u1', full_name: 'Ann', contact_email: 'ann@example.com' }]);
    expect(await db.sql`SELECT writer_id, body FROM posts`).toEqual([{ writer_id: 'ann@example.com', body: 'hello' }]);
    expect((await checkDrift(db.sql, next)).differences).toEqual([]);
    const { migrated, fresh, replan } = await expectOracle(db, next, old);
    expect(migrated).toBe(fresh);
    expect(replan.steps).toEqual([]);
    await db.sql`DELETE FROM users`;
    expect(await db.sql`SELECT count(*)::int AS n FROM posts`).toEqual([{ n: 0 }]);
  });

  test('without previousNames a rename is never guessed: drop and add, which is destructive', async () => {
    const db = await createTestDatabase('norename');
    dbs.push(db);
    const old = declare(before);
    await converge(db.sql, old);
    const next = declare(before.replace('      name: { type: string }', '      full_name: { type: string }').replace('[email, name]', '[email, full_name]'));
    const plan = await planFor(db.sql, next, { previous: old });
    expect(plan.steps.map((s) => [s.description, s.destructive])).toEqual([
      ['drop index users_email_name_idx of users', false],
      ['add column users.full_name', false],
      ['drop column users.name', true],
      ['create index users_email_full_name_idx on users (email, full_name)', false],
    ]);
    expect(plan.steps.filter((s) => s.change.kind === 'rename_column')).toEqual([]);
  });

  test('a previous name that no longer exists is ignored: the column is simply there', async () => {
    const db = await createTestDatabase('rename_done');
    dbs.push(db);
    const next = declare(yaml(`
  users:
    columns:
      full_name: { type: string, previousNames: [name] }
`));
    await converge(db.sql, next);
    expect((await planFor(db.sql, next)).steps).toEqual([]);
  });
});
