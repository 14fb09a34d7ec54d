import { afterEach, describe, expect, test } from 'vitest';
import { introspectSchema, probeTablesWithRows } from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

describe('introspectSchema', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  test('runs the same number of catalog queries for 3 tables and for 60', async () => {
    const db = await createTestDatabase('introspect_count');
    dbs.push(db);
    const create = (from: number, to: number): string =>
      Array.from({ length: to - from }, (_, i) => `CREATE TABLE t${from + i} (id text PRIMARY KEY, a int, b text UNIQUE, p text REFERENCES t0 (id)); CREATE INDEX t${from + i}_a_idx ON t${from + i} (a);`).join('\n');
    await db.sql.unsafe(`CREATE TABLE t0 (id text PRIMARY KEY); ${create(1, 3)}`);
    const small = await introspectSchema(db.sql);
    await db.sql.unsafe(create(3, 60));
    const large = await introspectSchema(db.sql);
    expect(Object.keys(small.ir.tables)).toHaveLength(3);
    expect(Object.keys(large.ir.tables)).toHaveLength(60);
    expect(small.queries).toBe(6);
    expect(large.queries).toBe(6);
  });

  test('reads columns, defaults, identity, keys and indexes; what a declaration cannot express stays visible', async () => {
    const db = await createTestDatabase('introspect_read');
    dbs.push(db);
    await db.sql.unsafe(`
      CREATE TABLE parent (code varchar(10) PRIMARY KEY);
      CREATE TABLE child (
        id bigint GENERATED ALWAYS AS IDENTITY,
        n integer NOT NULL DEFAULT -5,
        price numeric(12,2) DEFAULT 1.50,
        flag boolean DEFAULT true,
        doc jsonb DEFAULT '{"b": 1, "a": 2}',
        at timestamptz DEFAULT CURRENT_TIMESTAMP,
        token text DEFAULT md5('x'),
        total integer GENERATED ALWAYS AS (n * 2) STORED,
        parent_code varchar(10) REFERENCES parent (code) ON UPDATE CASCADE ON DELETE SET NULL,
        CONSTRAINT child_pk PRIMARY KEY (id),
        CONSTRAINT child_n_flag_key UNIQUE (n, flag)
      );
      CREATE INDEX child_plain ON child (n, price);
      CREATE INDEX child_desc ON child (n DESC);
      CREATE INDEX child_partial ON child (n) WHERE flag;
      CREATE INDEX child_expr ON child (lower(token));
      CREATE UNIQUE INDEX child_include ON child (n) INCLUDE (price);
    `);
    const live = await introspectSchema(db.sql, { managedTables: ['child'] });
    expect(live.unmanagedTables).toEqual(['parent']);
    expect(live.ir.tables.child).toEqual({
      name: 'child',
      columns: [
        { name: 'id', type: 'bigint', nullable: false, default: null, identity: 'always' },
        { name: 'n', type: 'integer', nullable: false, default: "'-5'::integer", identity: null },
        { name: 'price', type: 'numeric(12,2)', nullable: true, default: "'1.5'::numeric(12,2)", identity: null },
        { name: 'flag', type: 'boolean', nullable: true, default: 'true', identity: null },
        { name: 'doc', type: 'jsonb', nullable: true, default: '\'{"a":2,"b":1}\'::jsonb', identity: null },
        { name: 'at', type: 'timestamp with time zone', nullable: true, default: 'now()', identity: null },
        { name: 'token', type: 'text', nullable: true, default: "md5('x'::text)", identity: null },
        { name: 'total', type: 'integer', nullable: true, default: 'GENERATED ALWAYS AS ((n * 2)) STORED', identity: null },
        { name: 'parent_code', type: 'character varying(10)', nullable: true, default: null, identity: null },
      ],
      primaryKey: { name: 'child_pk', columns: ['id'] },
      uniques: [{ name: 'child_n_flag_key', columns: ['n', 'flag'] }],
      indexes: [
        { name: 'child_desc', columns: ['n'], unique: false, definition: 'CREATE INDEX child_desc ON public.child USING btree (n DESC)' },
        { name: 'child_expr', columns: [], unique: false, definition: 'CREATE INDEX child_expr ON public.child USING btree (lower(token))' },
        { name: 'child_include', columns: ['n', 'price'], unique: true, definition: 'CREATE UNIQUE INDEX child_include ON public.child USING btree (n) INCLUDE (price)' },
        { name: 'child_partial', columns: ['n'], unique: false, definition: 'CREATE INDEX child_partial ON public.child USING btree (n) WHERE flag' },
        { name: 'child_plain', columns: ['n', 'price'], unique: false, definition: null },
      ],
      foreignKeys: [
        { name: 'child_parent_code_fkey', columns: ['parent_code'], refTable: 'parent', refColumns: ['code'], onDelete: 'set_null', onUpdate: 'cascade' },
      ],
    });
  });

  test('probeTablesWithRows names exactly the tables holding rows', async () => {
    const db = await createTestDatabase('introspect_rows');
    dbs.push(db);
    await db.sql.unsafe('CREATE TABLE a (x int); CREATE TABLE b (x int); CREATE TABLE "we""ird" (x int); INSERT INTO a VALUES (1); INSERT INTO "we""ird" VALUES (1);');
    expect(await probeTablesWithRows(db.sql, ['b', 'a', 'we"ird'])).toEqual(['a', 'we"ird']);
    expect(await probeTablesWithRows(db.sql, [])).toEqual([]);
  });
});
