import { afterEach, describe, expect, test } from 'vitest';
import { ConflictError } from '../../core/errors.ts';
import { applyPlan, introspectSchema, schemaOf } from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { converge, declare, dumpSchema, planFor, snapshot, yaml } from './helpers.ts';

const v1 = yaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
  posts:
    columns:
      author_id: { type: string, references: { table: users } }
`);

/** Tables another tool and an extension put in the same database, with data. */
async function foreignTables(db: TestDatabase): Promise<void> {
  await db.sql.unsafe(`
    CREATE TABLE legacy_orders (order_no serial PRIMARY KEY, total numeric(10,2) NOT NULL, note varchar(40));
    CREATE INDEX legacy_orders_total_idx ON legacy_orders (total DESC);
    INSERT INTO legacy_orders (total, note) VALUES (9.99, 'kept');
    CREATE TABLE spatial_ref_sys (srid integer PRIMARY KEY CHECK (srid > 0), auth_name varchar(256));
    INSERT INTO spatial_ref_sys VALUES (4326, 'EPSG');
    CREATE SCHEMA tiger;
    CREATE TABLE tiger.places (id int PRIMARY KEY, name text);
    CREATE VIEW order_totals AS SELECT sum(total) AS total FROM legacy_orders;
  `);
}

async function foreignState(db: TestDatabase): Promise<string> {
  const dump = await dumpSchema(db.url);
  const keep = dump
    .split('\n\n')
    .filter((block) => /legacy_orders|spatial_ref_sys|tiger|order_totals/.test(block))
    .join('\n\n');
  const rows = await db.sql`SELECT (SELECT json_agg(o) FROM legacy_orders o) AS orders, (SELECT json_agg(s) FROM spatial_ref_sys s) AS srs`;
  return `${keep}\n${JSON.stringify(rows)}`;
}

describe('tables Santokit does not manage', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  test('are never altered or dropped, through creates, changes and drops of managed tables', async () => {
    // Given another tool's tables, an extension's table, another schema and a view
    const db = await createTestDatabase('unmanaged');
    dbs.push(db);
    await foreignTables(db);
    const before = await foreignState(db);

    // When a schema is created, changed, and finally removed table by table (with force)
    const first = declare(v1);
    const plan1 = await planFor(db.sql, first);
    await applyPlan(db.sql, plan1, { releaseId: 'r1' });
    const second = declare(yaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      name: { type: string }
`));
    const plan2 = await planFor(db.sql, second, { previous: first });
    await applyPlan(db.sql, plan2, { releaseId: 'r2', force: true });
    const empty = schemaOf([]);
    const plan3 = await planFor(db.sql, empty, { previous: second });
    await applyPlan(db.sql, plan3, { releaseId: 'r3', force: true });

    // Then no plan ever named them, and they are exactly as they were
    for (const plan of [plan1, plan2, plan3]) {
      expect(plan.managedTables.filter((t) => !['posts', 'users'].includes(t))).toEqual([]);
      expect(plan.steps.every((s) => s.change.table === 'users' || s.change.table === 'posts')).toBe(true);
    }
    expect(plan3.steps.map((s) => s.description)).toEqual(['drop table users']);
    expect(await foreignState(db)).toBe(before);
    expect((await introspectSchema(db.sql)).ir.tables).toHaveProperty('legacy_orders');
  });

  test('a plan with no previous release never drops a table, even one that looks like ours', async () => {
    const db = await createTestDatabase('unmanaged_noprev');
    dbs.push(db);
    await foreignTables(db);
    await converge(db.sql, declare(v1));
    // the declaration forgets posts but nobody says it was declared before: posts is left alone
    const plan = await planFor(db.sql, declare(yaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
`)));
    expect(plan.steps).toEqual([]);
  });

  test('an unmanaged table that depends on a managed one blocks its drop; nothing changes', async () => {
    // Given another tool's table with a key to our users table
    const db = await createTestDatabase('unmanaged_dep');
    dbs.push(db);
    const first = declare(v1);
    await converge(db.sql, first);
    await db.sql`CREATE TABLE crm_contacts (id int PRIMARY KEY, user_id text REFERENCES users (id))`;
    const before = await snapshot(db);

    // When a release drops users
    const plan = await planFor(db.sql, schemaOf([]), { previous: first });
    const err = await applyPlan(db.sql, plan, { releaseId: 'r', force: true }).catch((e: unknown) => e);

    // Then the plan already refuses the drop, naming the dependency (main let Postgres fail at apply
    // with 2BP01); even force cannot apply it; the other table is untouched, nothing changed
    const drop = plan.steps.find((s) => s.description === 'drop table users');
    expect(drop?.refused).toBe(true);
    expect(drop?.hazards.find((h) => h.kind === 'untrackable_dependencies')?.message).toContain('foreign key crm_contacts_user_id_fkey of public.crm_contacts depends on users');
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).reason).toBe('PlanRefused');
    expect(await snapshot(db)).toBe(before);
  });
});
