import { describe, expect, test } from 'vitest';
import { hazardsOf } from './hazards.ts';
import { physicalSchema, schemaOf, type SchemaIR } from './ir.ts';
import { declareSchema } from './declare.ts';
import { parseSchemaFiles } from './parse.ts';
import type { LiveSchema } from './introspect.ts';
import { blockedSteps, managedTablesOf, planSchemaChanges, renderPlan } from './plan.ts';

function declareYaml(tables: string): SchemaIR {
  return declareSchema(parseSchemaFiles([{ path: 'schema/t.yaml', text: `version: 1\ntables:\n${tables}` }])).main ?? schemaOf([]);
}

/** A live schema as introspection would report it for a database built from `ir`. */
function liveOf(ir: SchemaIR, tablesWithRows: string[] | null = null): LiveSchema {
  return { ir: physicalSchema(ir), unmanagedTables: [], tablesWithRows, queries: 0 };
}

const v1 = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false }
      age: { type: int }
`);
const v2 = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: string }
      bio: { type: string }
  posts:
    columns:
      author_id: { type: string, references: { table: users } }
`);

describe('planSchemaChanges', () => {
  test('classifies every step from its structure', () => {
    const plan = planSchemaChanges({ declared: v2, live: liveOf(v1, ['users']), previous: v1 });
    expect(plan.steps.map((s) => [s.description, s.destructive, s.hazards.map((h) => h.kind)])).toEqual([
      ['create table posts', false, []],
      ['add column users.bio', false, ['access_exclusive_lock']],
      ['change type of users.age from integer to text', true, ['correctness', 'table_rewrite', 'access_exclusive_lock']],
      ['add unique constraint users_email_key on users (email)', false, ['index_build', 'access_exclusive_lock']],
      // a new table carries no hazard of its own, but its key locks the existing table it points to
      ['add foreign key posts_author_id_fkey on posts (author_id) → users (id)', false, ['share_row_exclusive_lock']],
    ]);
  });

  test('plan text is byte-identical for the same inputs', () => {
    const a = planSchemaChanges({ declared: v2, live: liveOf(v1), previous: v1, connection: 'main' });
    const b = planSchemaChanges({ declared: declareYaml(`
  posts:
    columns:
      author_id: { type: string, references: { table: users } }
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: string }
      bio: { type: string }
`), live: liveOf(v1), previous: v1, connection: 'main' });
    expect(renderPlan(b)).toBe(renderPlan(a));
    expect(b.hash).toBe(a.hash);
  });

  test('renders a header, numbered steps with hazards and SQL, and what is blocked', () => {
    const plan = planSchemaChanges({ declared: v2, live: liveOf(v1), previous: v1, connection: 'main' });
    const text = renderPlan(plan);
    expect(text.split('\n').slice(0, 3)).toEqual(['connection main: 5 steps, 1 destructive', `  live schema ${plan.liveHash}`, `  plan ${plan.hash}`]);
    expect(text).toContain(`3. change type of users.age from integer to text  [destructive]
   ! correctness: converts every value of users.age from integer to text: writes each integer value as text; readers of the old type may break
   ~ table_rewrite: rewrites users and its indexes
   ~ access_exclusive_lock: blocks every read and write of users while it runs (ACCESS EXCLUSIVE)
   ALTER TABLE "public"."users" ALTER COLUMN "age" TYPE text USING "age"::text;
`);
    expect(text.endsWith('\nblocked: step 3 needs force or allowed hazards (correctness)\n')).toBe(true);
    expect(renderPlan(planSchemaChanges({ declared: v1, live: liveOf(v1) }))).toBe(`connection main: no changes\n  live schema ${planSchemaChanges({ declared: v1, live: liveOf(v1) }).liveHash}\n  plan ${planSchemaChanges({ declared: v1, live: liveOf(v1) }).hash}\n`);
  });

  test('the live hash covers only managed tables, and changes with them', () => {
    const other = declareYaml(`
  not_ours:
    columns:
      x: { type: int }
`);
    const withOther = schemaOf([...Object.values(physicalSchema(v1).tables), ...Object.values(other.tables)]);
    const a = planSchemaChanges({ declared: v2, live: liveOf(v1), previous: v1 });
    const b = planSchemaChanges({ declared: v2, live: { ...liveOf(v1), ir: withOther }, previous: v1 });
    expect(b.liveHash).toBe(a.liveHash);
    expect(b.managedTables).toEqual(['posts', 'users']);
    const c = planSchemaChanges({ declared: v2, live: liveOf(v2), previous: v1 });
    expect(c.liveHash).not.toBe(a.liveHash);
  });

  test('managed tables are those declared now or by the previous release', () => {
    expect(managedTablesOf(v1, v2)).toEqual(['posts', 'users']);
    expect(managedTablesOf(v1)).toEqual(['users']);
  });
});

describe('hazards', () => {
  const addRequired = { kind: 'add_column', table: 'users', column: { name: 'code', type: 'text', nullable: false, default: null, identity: null } } as const;

  test('a NOT NULL column without a default is refused on a table with rows, destructive when unknown, safe on an empty one', () => {
    const kinds = (rows: string[] | null): string[] => hazardsOf(addRequired, { newTables: new Set(), tablesWithRows: rows === null ? null : new Set(rows) }).map((h) => h.kind);
    expect(kinds(['users'])).toEqual(['cannot_apply', 'access_exclusive_lock']);
    expect(kinds([])).toEqual(['access_exclusive_lock']);
    expect(kinds(null)).toEqual(['correctness', 'access_exclusive_lock']);
  });

  test('changes to a table created by the same plan carry none', () => {
    expect(hazardsOf(addRequired, { newTables: new Set(['users']), tablesWithRows: null })).toEqual([]);
  });
});

describe('blockedSteps', () => {
  const plan = planSchemaChanges({
    declared: declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false }
`),
    live: liveOf(v2),
    previous: v2,
  });

  test('lists destructive steps with the hazards not allowed', () => {
    expect(blockedSteps(plan).map((b) => [b.number, b.description, b.hazards.map((h) => h.kind)])).toEqual([
      // dropping a declared unique key removes a guarantee: not safe (main called it index_dropped only)
      [1, 'drop unique constraint users_email_key of users', ['correctness']],
      [2, 'drop table posts', ['deletes_data']],
      [3, 'drop column users.age', ['deletes_data']],
      [4, 'drop column users.bio', ['deletes_data']],
    ]);
  });

  test('force allows everything; allowed hazards allow their steps; the plan’s own allowance is the default', () => {
    expect(blockedSteps(plan, { force: true })).toEqual([]);
    expect(blockedSteps(plan, { allowHazards: ['deletes_data', 'correctness'] })).toEqual([]);
    expect(blockedSteps(plan, { allowHazards: ['deletes_data'] }).map((b) => b.number)).toEqual([1]);
    expect(blockedSteps(plan, { allowHazards: ['correctness'] })).toHaveLength(3);
    const allowedAtPlan = planSchemaChanges({ declared: v1, live: liveOf(v2), previous: v2, allowHazards: ['deletes_data'] });
    expect(blockedSteps(allowedAtPlan).map((b) => b.description)).toEqual(['drop unique constraint users_email_key of users', 'change type of users.age from text to integer']);
    expect(renderPlan(allowedAtPlan)).toContain('blocked: step');
  });
});
