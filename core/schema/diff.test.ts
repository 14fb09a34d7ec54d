import { describe, expect, test } from 'vitest';
import { describeChange } from './changes.ts';
import { diffSchemas } from './diff.ts';
import { physicalSchema, schemaOf, type SchemaIR, type TableIR } from './ir.ts';
import { declareSchema } from './declare.ts';
import { parseSchemaFiles } from './parse.ts';

function declareYaml(tables: string): SchemaIR {
  return declareSchema(parseSchemaFiles([{ path: 'schema/t.yaml', text: `version: 1\ntables:\n${tables}` }])).main ?? schemaOf([]);
}

const descriptions = (declared: SchemaIR, live: SchemaIR, previous: SchemaIR | null = null): string[] =>
  diffSchemas(declared, physicalSchema(live), previous).map(describeChange);

const base = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: int }
  posts:
    columns:
      author_id: { type: string, references: { table: users } }
      title: { type: string }
    indexes:
      - { columns: [title] }
`);

describe('diffSchemas', () => {
  test('identical schemas give no changes', () => {
    expect(diffSchemas(base, physicalSchema(base))).toEqual([]);
  });

  test('an empty database gives creates: tables, then indexes, then foreign keys', () => {
    expect(descriptions(base, schemaOf([]))).toEqual([
      'create table posts',
      'create table users',
      'create index posts_title_idx on posts (title)',
      'add foreign key posts_author_id_fkey on posts (author_id) → users (id)',
    ]);
  });

  test('a table missing from the declaration is dropped only when the previous release declared it', () => {
    const onlyUsers = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: int }
`);
    expect(descriptions(onlyUsers, base)).toEqual([]);
    expect(descriptions(onlyUsers, base, base)).toEqual(['drop table posts']);
  });

  test('keys between tables dropped together are dropped first', () => {
    const two = declareYaml(`
  a:
    columns:
      b_id: { type: string, references: { table: b } }
  b:
    columns:
      a_id: { type: string, references: { table: a } }
`);
    expect(descriptions(schemaOf([]), two, two)).toEqual(['drop foreign key a_b_id_fkey of a', 'drop foreign key b_a_id_fkey of b', 'drop table a', 'drop table b']);
  });

  test('previousNames renames a column, and the constraints named after it follow', () => {
    const renamed = declareYaml(`
  users:
    columns:
      mail: { type: string, nullable: false, unique: true, previousNames: [email] }
      age: { type: int }
  posts:
    columns:
      author_id: { type: string, references: { table: users } }
      title: { type: string }
    indexes:
      - { columns: [title] }
`);
    expect(descriptions(renamed, base)).toEqual(['rename column users.email to mail', 'rename constraint users_email_key of users to users_mail_key']);
  });

  test('a previous name is not used when a column of that name is still declared', () => {
    const live = declareYaml(`
  t:
    columns:
      a: { type: string }
      b: { type: string }
`);
    const declared = declareYaml(`
  t:
    columns:
      c: { type: string, previousNames: [x] }
      a: { type: string }
      b: { type: string }
`);
    expect(descriptions(declared, live)).toEqual(['add column t.c']);
  });

  test('a type change re-sets the default around it, so no cast to the old type remains', () => {
    const live = declareYaml(`
  t:
    columns:
      n: { type: int, default: 5, nullable: false }
`);
    const declared = declareYaml(`
  t:
    columns:
      n: { type: bigint, default: 5, nullable: false }
`);
    expect(descriptions(declared, live)).toEqual([
      "drop default of t.n",
      'change type of t.n from integer to bigint',
      "set default of t.n to '5'::bigint",
    ]);
  });

  test('nullability, defaults and identity each become their own step', () => {
    const live = declareYaml(`
  t:
    id: { generate: auto_increment }
    columns:
      a: { type: string }
      b: { type: string, nullable: false, default: x }
`);
    const declared = declareYaml(`
  t:
    id: { generate: auto_increment }
    columns:
      a: { type: string, nullable: false, default: y }
      b: { type: string }
`);
    expect(descriptions(declared, live)).toEqual(['drop default of t.b', "set default of t.a to 'y'::text", 'drop NOT NULL on t.b', 'set NOT NULL on t.a']);
    const noIdentity = declareYaml(`
  t:
    id: { generate: client }
    columns:
      a: { type: string }
      b: { type: string, nullable: false, default: x }
`);
    expect(descriptions(noIdentity, live)).toEqual(['drop identity of t.id', 'change type of t.id from bigint to text']);
    expect(descriptions(live, noIdentity)).toEqual(['change type of t.id from text to bigint', 'make t.id an identity column', 'continue the identity of t.id after its largest value']);
  });

  test('an index with the same definition under another name is renamed, a changed one rebuilt', () => {
    const live = physicalSchema(base);
    const posts = live.tables.posts as TableIR;
    const renamedIndex = schemaOf([...Object.values(live.tables).filter((t) => t.name !== 'posts'), { ...posts, indexes: [{ name: 'by_title', columns: ['title'], unique: false, definition: null }] }]);
    expect(descriptions(base, renamedIndex)).toEqual(['rename index by_title of posts to posts_title_idx']);
    const descIndex = schemaOf([
      ...Object.values(live.tables).filter((t) => t.name !== 'posts'),
      { ...posts, indexes: [{ name: 'posts_title_idx', columns: ['title'], unique: false, definition: 'CREATE INDEX posts_title_idx ON public.posts USING btree (title DESC)' }] },
    ]);
    expect(descriptions(base, descIndex)).toEqual(['drop index posts_title_idx of posts', 'create index posts_title_idx on posts (title)']);
  });

  test('two indexes swapping names are rebuilt rather than renamed into each other', () => {
    const live = declareYaml(`
  t:
    columns:
      a: { type: string }
      b: { type: string }
    indexes:
      - { columns: [a], name: one }
      - { columns: [b], name: two }
`);
    const declared = declareYaml(`
  t:
    columns:
      a: { type: string }
      b: { type: string }
    indexes:
      - { columns: [a], name: two }
      - { columns: [b], name: one }
`);
    expect(descriptions(declared, live)).toEqual(['drop index one of t', 'drop index two of t', 'create index one on t (b)', 'create index two on t (a)']);
  });

  test('a changed foreign key action is dropped and added again', () => {
    const declared = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: int }
  posts:
    columns:
      author_id: { type: string, references: { table: users, onDelete: cascade } }
      title: { type: string }
    indexes:
      - { columns: [title] }
`);
    expect(descriptions(declared, base)).toEqual(['drop foreign key posts_author_id_fkey of posts', 'add foreign key posts_author_id_fkey on posts (author_id) → users (id)']);
  });

  test('is deterministic', () => {
    const live = declareYaml(`
  z:
    columns: {}
  a:
    columns:
      x: { type: int }
`);
    expect(diffSchemas(base, physicalSchema(live), live)).toEqual(diffSchemas(base, physicalSchema(live), live));
    expect(JSON.stringify(diffSchemas(base, physicalSchema(live), live))).toBe(JSON.stringify(diffSchemas(base, physicalSchema(live), live)));
  });

  test('inside a managed table only what the previous release declared is dropped', () => {
    const users = base.tables.users as TableIR;
    // a live users table with a DBA column, index, unique key and foreign key
    const handMade: TableIR = {
      ...users,
      columns: [...users.columns, { name: 'legacy', type: 'text', nullable: true, default: null, identity: null }],
      indexes: [{ name: 'dba_age', columns: ['age'], unique: false, definition: null }],
      uniques: [...users.uniques, { name: 'dba_email_age', columns: ['email', 'age'] }],
      foreignKeys: [{ name: 'dba_fk', columns: ['legacy'], refTable: 'posts', refColumns: ['id'], onDelete: 'no_action', onUpdate: 'no_action' }],
    };
    const live = schemaOf([handMade, base.tables.posts as TableIR]);
    expect(descriptions(base, live, base)).toEqual([]);
    expect(descriptions(base, live, null)).toEqual([]);
    // what the previous release declared still goes
    const withoutAge = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false }
  posts:
    columns:
      author_id: { type: string, references: { table: users } }
      title: { type: string }
    indexes:
      - { columns: [title] }
`);
    expect(descriptions(withoutAge, live, base)).toEqual(['drop unique constraint users_email_key of users', 'drop column users.age']);
  });

  test('previousNames renames a table; its keys and its references follow', () => {
    const renamed = declareYaml(`
  members:
    previousNames: [users]
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: int }
  posts:
    columns:
      author_id: { type: string, references: { table: members } }
      title: { type: string }
    indexes:
      - { columns: [title] }
`);
    expect(descriptions(renamed, base, base)).toEqual([
      'rename table users to members',
      'rename constraint users_pkey of members to members_pkey',
      'rename constraint users_email_key of members to members_email_key',
    ]);
  });

  test('index names exchanged between tables move through a temporary name', () => {
    const a = declareYaml(`
  p:
    columns:
      x: { type: string }
    indexes:
      - { columns: [x], name: one }
  q:
    columns:
      y: { type: string }
    indexes:
      - { columns: [y], name: two }
`);
    const b = declareYaml(`
  p:
    columns:
      x: { type: string }
    indexes:
      - { columns: [x], name: two }
  q:
    columns:
      y: { type: string }
    indexes:
      - { columns: [y], name: one }
`);
    const steps = descriptions(b, a, a);
    expect(steps).toHaveLength(3);
    expect(steps[0]).toMatch(/^rename index one of p to stk_tmp_[0-9a-f]{12}$/);
    expect(steps[1]).toBe('rename index two of q to one');
    expect(steps[2]).toMatch(/^rename index stk_tmp_[0-9a-f]{12} of p to two$/);
  });
});
