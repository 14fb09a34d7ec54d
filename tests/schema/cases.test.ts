import { afterEach, describe, expect, test } from 'vitest';
import {
  applyPlan,
  DestructiveChangeError,
  diffSchemas,
  introspectSchema,
  renderPlan,
  type HazardKind,
  type TableIR,
} from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { converge, declare, expectOracle, planFor, snapshot, stepsText, yaml } from './helpers.ts';

/**
 * The table of cases. Each starts from the same old state with rows in it, declares a new state
 * and asserts: the plan text, its classification, that the pure diff of the two declarations gives
 * the same changes, the catalog (and data) after apply, and the oracle — the migrated database
 * dumps exactly like one built fresh from the new declaration, and re-plans empty. Destructive
 * cases also show that without force nothing at all changes.
 */

const authors = `
  authors:
    id: { generate: ulid }
    columns:
      name: { type: string, nullable: false }
`;

const books = (columns: string, extra = ''): string => `
  books:
    id: { generate: auto_increment }
    columns:
      title: { type: string, nullable: false }
${columns}${extra}`;

const baseColumns = `      pages: { type: int }
      author_id: { type: string }
      status: { type: string, nullable: false, default: draft }
`;

const before = yaml(authors + books(baseColumns));

const EXCLUSIVE = (t: string): string => `   ~ access_exclusive_lock: blocks every read and write of ${t} while it runs (ACCESS EXCLUSIVE)`;

interface Case {
  readonly name: string;
  readonly after: string;
  readonly destructive: boolean;
  readonly hazards: readonly (readonly HazardKind[])[];
  readonly steps: string;
  readonly check: (db: TestDatabase, table: TableIR | undefined) => Promise<void>;
}

const cases: Case[] = [
  {
    name: 'add a nullable column (safe)',
    after: yaml(authors + books(`${baseColumns}      subtitle: { type: string }\n`)),
    destructive: false,
    hazards: [['access_exclusive_lock']],
    steps: `1. add column books.subtitle
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ADD COLUMN "subtitle" text;`,
    check: async (db, t) => {
      expect(t?.columns.find((c) => c.name === 'subtitle')).toEqual({ name: 'subtitle', type: 'text', nullable: true, default: null, identity: null });
      expect(await db.sql`SELECT subtitle FROM books`).toEqual([{ subtitle: null }]);
    },
  },
  {
    name: 'add a NOT NULL column with a default (safe)',
    after: yaml(authors + books(`${baseColumns}      rating: { type: int, nullable: false, default: 3 }\n`)),
    destructive: false,
    hazards: [['access_exclusive_lock']],
    steps: `1. add column books.rating
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ADD COLUMN "rating" integer DEFAULT '3'::integer NOT NULL;`,
    check: async (db, t) => {
      expect(t?.columns.find((c) => c.name === 'rating')).toEqual({ name: 'rating', type: 'integer', nullable: false, default: "'3'::integer", identity: null });
      expect(await db.sql`SELECT rating FROM books`).toEqual([{ rating: 3 }]);
    },
  },
  {
    name: 'add an index (safe)',
    after: yaml(authors + books(baseColumns, '    indexes:\n      - { columns: [title, status] }\n')),
    destructive: false,
    hazards: [['index_build', 'share_lock']],
    steps: `1. create index books_title_status_idx on books (title, status)
   ~ index_build: builds index books_title_status_idx, reading the whole table
   ~ share_lock: blocks writes to books while the index is built (SHARE)
   CREATE INDEX "books_title_status_idx" ON "public"."books" ("title", "status");`,
    check: async (_db, t) => {
      expect(t?.indexes).toEqual([{ name: 'books_title_status_idx', columns: ['title', 'status'], unique: false, definition: null }]);
    },
  },
  {
    name: 'add a foreign key (safe)',
    after: yaml(
      authors +
        books(`      pages: { type: int }
      author_id: { type: string, references: { table: authors, onDelete: set_null } }
      status: { type: string, nullable: false, default: draft }
`),
    ),
    destructive: false,
    hazards: [['share_row_exclusive_lock']],
    steps: `1. add foreign key books_author_id_fkey on books (author_id) → authors (id)
   ~ share_row_exclusive_lock: blocks writes to books and authors while existing rows are checked (SHARE ROW EXCLUSIVE)
   ALTER TABLE "public"."books" ADD CONSTRAINT "books_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "public"."authors" ("id") ON DELETE SET NULL;`,
    check: async (db, t) => {
      expect(t?.foreignKeys).toEqual([
        { name: 'books_author_id_fkey', columns: ['author_id'], refTable: 'authors', refColumns: ['id'], onDelete: 'set_null', onUpdate: 'no_action' },
      ]);
      await db.sql`DELETE FROM authors`;
      expect(await db.sql`SELECT author_id FROM books`).toEqual([{ author_id: null }]);
    },
  },
  {
    name: 'widen int to bigint (destructive: type change)',
    after: yaml(
      authors +
        books(`      pages: { type: bigint }
      author_id: { type: string }
      status: { type: string, nullable: false, default: draft }
`),
    ),
    destructive: true,
    hazards: [['correctness', 'table_rewrite', 'access_exclusive_lock']],
    steps: `1. change type of books.pages from integer to bigint  [destructive]
   ! correctness: converts every value of books.pages from integer to bigint; readers of the old type may break
   ~ table_rewrite: rewrites books and its indexes
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ALTER COLUMN "pages" TYPE bigint USING "pages"::bigint;

blocked: step 1 needs force or allowed hazards (correctness)`,
    check: async (db, t) => {
      expect(t?.columns.find((c) => c.name === 'pages')?.type).toBe('bigint');
      expect(await db.sql`SELECT pages::text AS pages FROM books`).toEqual([{ pages: '100' }]);
    },
  },
  {
    name: 'make a column NOT NULL (destructive)',
    after: yaml(
      authors +
        books(`      pages: { type: int, nullable: false }
      author_id: { type: string }
      status: { type: string, nullable: false, default: draft }
`),
    ),
    destructive: true,
    hazards: [['correctness', 'access_exclusive_lock']],
    steps: `1. set NOT NULL on books.pages  [destructive]
   ! correctness: books.pages stops accepting NULL; the apply fails if it holds any, and writers that send NULL break
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ALTER COLUMN "pages" SET NOT NULL;

blocked: step 1 needs force or allowed hazards (correctness)`,
    check: async (_db, t) => {
      expect(t?.columns.find((c) => c.name === 'pages')?.nullable).toBe(false);
    },
  },
  {
    name: 'drop a column (destructive)',
    after: yaml(
      authors +
        books(`      author_id: { type: string }
      status: { type: string, nullable: false, default: draft }
`),
    ),
    destructive: true,
    hazards: [['deletes_data', 'access_exclusive_lock']],
    steps: `1. drop column books.pages  [destructive]
   ! deletes_data: drops column books.pages and the data it holds
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" DROP COLUMN "pages";

blocked: step 1 needs force or allowed hazards (deletes_data)`,
    check: async (db, t) => {
      expect(t?.columns.map((c) => c.name)).toEqual(['id', 'title', 'author_id', 'status']);
      expect(await db.sql`SELECT title FROM books`).toEqual([{ title: 'Dune' }]);
    },
  },
  {
    name: 'remove a table from the declaration (destructive)',
    after: yaml(authors),
    destructive: true,
    hazards: [['deletes_data', 'access_exclusive_lock']],
    steps: `1. drop table books  [destructive]
   ! deletes_data: drops table books and every row in it
${EXCLUSIVE('books')}
   DROP TABLE "public"."books";

blocked: step 1 needs force or allowed hazards (deletes_data)`,
    check: async (db, t) => {
      expect(t).toBeUndefined();
      expect(await db.sql`SELECT to_regclass('public.books') AS t`).toEqual([{ t: null }]);
    },
  },
  {
    name: 'change a default (safe)',
    after: yaml(
      authors +
        books(`      pages: { type: int }
      author_id: { type: string }
      status: { type: string, nullable: false, default: published }
`),
    ),
    destructive: false,
    hazards: [['access_exclusive_lock']],
    steps: `1. set default of books.status to 'published'::text
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ALTER COLUMN "status" SET DEFAULT 'published'::text;`,
    check: async (db, t) => {
      expect(t?.columns.find((c) => c.name === 'status')?.default).toBe("'published'::text");
      expect(await db.sql`INSERT INTO books (title) VALUES ('New') RETURNING status`).toEqual([{ status: 'published' }]);
      expect(await db.sql`SELECT status FROM books WHERE title = 'Dune'`).toEqual([{ status: 'draft' }]);
    },
  },
  {
    name: 'drop an index (index_dropped, not destructive)',
    after: before,
    destructive: false,
    hazards: [['index_dropped', 'access_exclusive_lock']],
    steps: `1. drop index books_by_title of books
   ~ index_dropped: drops index books_by_title; queries that used it get slower
${EXCLUSIVE('books')}
   DROP INDEX "public"."books_by_title";`,
    check: async (_db, t) => {
      expect(t?.indexes).toEqual([]);
    },
  },
  {
    name: 'add a unique constraint (safe)',
    after: yaml(
      authors +
        books(`      pages: { type: int }
      author_id: { type: string, unique: true }
      status: { type: string, nullable: false, default: draft }
`),
    ),
    destructive: false,
    hazards: [['index_build', 'access_exclusive_lock']],
    steps: `1. add unique constraint books_author_id_key on books (author_id)
   ~ index_build: builds an index on books, reading the whole table
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ADD CONSTRAINT "books_author_id_key" UNIQUE ("author_id");`,
    check: async (_db, t) => {
      expect(t?.uniques).toEqual([{ name: 'books_author_id_key', columns: ['author_id'] }]);
    },
  },
];

describe('plan and apply: the table of cases', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  test.each(cases)('$name', async (c) => {
    // Given a database in the old state, holding rows
    const oldIR = declare(c.name.startsWith('drop an index') ? yaml(authors + books(baseColumns, '    indexes:\n      - { columns: [title], name: books_by_title }\n')) : before);
    const newIR = declare(c.after);
    const db = await createTestDatabase('case');
    dbs.push(db);
    await converge(db.sql, oldIR);
    await db.sql`INSERT INTO authors (id, name) VALUES ('a1', 'Ann')`;
    await db.sql`INSERT INTO books (title, pages, author_id) VALUES ('Dune', 100, 'a1')`;

    // When the new declaration is planned against it
    const plan = await planFor(db.sql, newIR, { previous: oldIR });

    // Then the plan text and its classification are exactly as expected
    expect(stepsText(renderPlan(plan)).trimEnd()).toBe(c.steps);
    expect(plan.steps.map((s) => s.hazards.map((h) => h.kind))).toEqual(c.hazards);
    expect(plan.steps.some((s) => s.destructive)).toBe(c.destructive);
    // and the pure diff of the two declarations agrees with the plan made from the live catalog
    expect(diffSchemas(newIR, oldIR, oldIR)).toEqual(plan.steps.map((s) => s.change));

    if (c.destructive) {
      // Without force nothing at all changes
      const untouched = await snapshot(db);
      await expect(applyPlan(db.sql, plan, { releaseId: 'r2' })).rejects.toBeInstanceOf(DestructiveChangeError);
      expect(await snapshot(db)).toBe(untouched);
      await applyPlan(db.sql, plan, { releaseId: 'r2', force: true });
    } else {
      await applyPlan(db.sql, plan, { releaseId: 'r2' });
    }

    // Then the catalog is as declared
    const live = await introspectSchema(db.sql);
    await c.check(db, live.ir.tables.books);

    // and the oracle holds
    const { migrated, fresh, replan } = await expectOracle(db, newIR, oldIR);
    expect(migrated).toBe(fresh);
    expect(replan.steps).toEqual([]);
  });
});
