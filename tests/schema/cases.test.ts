import { afterAll, describe, expect, test } from 'vitest';
import { ValidationError } from '../../core/errors.ts';
import {
  applyPlan,
  canonicalJson,
  DestructiveChangeError,
  diffSchemas,
  hashSchema,
  introspectSchema,
  renderPlan,
  type SchemaIR,
  type SchemaPlan,
} from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { converge, declare, dumpSchema, planFor, stepsText, yaml } from './helpers.ts';

/**
 * The table of cases, on real Postgres. Each starts from an old declaration applied to a fresh
 * database holding rows (plus, for some, objects a DBA made by hand), plans a new declaration and
 * asserts: every step with its hazards, whether the plan is destructive or refused, the catalog and
 * the data after apply, and the oracle — the migrated database dumps (`pg_dump --schema-only`)
 * exactly like one built fresh from the new declaration (once the hand-made objects the case
 * expects to survive are removed), and planning again is empty.
 *
 * Each case names the class of failure it shows and what the engine on main did with it:
 *   1 a plan Postgres refuses (now: it applies, or it is refused at plan time with a reason)
 *   2 objects no release declared dropped, or blocking releases (now: left alone)
 *   3 drift blind to behaviour (now: modelled, and repaired by the plan, or reported)
 *   4 plan-time truth (casts, duplicates, logical types, big defaults, identity, row probes)
 *   5 table renames (now: `previousNames` on a table)
 *   6 hazards that do not name every table a step locks
 * A "baseline" case shows behaviour main already had right.
 */

interface Case {
  readonly name: string;
  /** the failure class and what main did */
  readonly main: string;
  readonly before: string;
  readonly after: string;
  /** SQL run on the old state once its rows are in: more rows, objects made by hand */
  readonly setup?: string;
  /** plan without a previous release (as for the first release on a database) */
  readonly noPrevious?: true;
  /** each step as `description | hazard kinds` */
  readonly steps?: readonly string[];
  /** the whole rendered plan without its header, for a few cases */
  readonly text?: string;
  readonly destructive?: boolean;
  /** the plan is refused: one step has this text in a refusing hazard */
  readonly refused?: string;
  /** the new declaration is rejected when it is read: the message has this text */
  readonly invalid?: string;
  /** texts the rendered plan contains (hazard messages) */
  readonly mentions?: readonly string[];
  /** assertions on the catalog and the data after apply */
  readonly check?: (db: TestDatabase) => Promise<void>;
  /** SQL removing the hand-made objects the case expects to survive, before the oracle */
  readonly cleanup?: string;
}

const authors = `
  authors:
    id: { generate: ulid }
    columns:
      name: { type: string, nullable: false }
`;

/** books with its usual columns, more columns (`cols`) and anything after them (`extra`). */
const books = (cols = '', extra = ''): string => `
  books:
    id: { generate: auto_increment }
    columns:
      title: { type: string, nullable: false }
      pages: { type: int }
      author_id: { type: string, references: { table: authors } }
      status: { type: string, nullable: false, default: draft }
${cols}${extra}`;

const base = yaml(authors + books());
const withBooks = (cols = '', extra = '', more = ''): string => yaml(authors + books(cols, extra) + more);

const SEED = `INSERT INTO authors (id, name) VALUES ('a1', 'Ann'); INSERT INTO books (title, pages, author_id) VALUES ('Dune', 100, 'a1')`;

const EXCLUSIVE = (t: string): string => `   ~ access_exclusive_lock: blocks every read and write of ${t} while it runs (ACCESS EXCLUSIVE)`;

const rows = async (db: TestDatabase, query: string): Promise<unknown[]> => [...(await db.sql.unsafe(query))].map((r) => ({ ...r }));
const expectRows = async (db: TestDatabase, query: string, expected: unknown[]): Promise<void> => {
  expect(await rows(db, query)).toEqual(expected);
};
const exists = async (db: TestDatabase, relation: string): Promise<boolean> => {
  const [r] = await db.sql`SELECT to_regclass(${`public.${relation}`}) IS NOT NULL AS present`;
  return r?.present === true;
};
const constraintExists = async (db: TestDatabase, name: string): Promise<boolean> => {
  const [r] = await db.sql`SELECT count(*)::int AS n FROM pg_constraint WHERE conname = ${name}`;
  return r?.n === 1;
};

/** A type change of books.v: from → to, with the row's value set by `value` (SQL). */
function retype(
  name: string,
  main: string,
  from: string,
  to: string,
  value: string,
  o: { step: string; destructive?: boolean; refused?: string; after?: string | null },
): Case {
  return {
    name,
    main,
    before: withBooks(`      v: { type: ${from} }\n`),
    after: withBooks(`      v: { type: ${to} }\n`),
    setup: `UPDATE books SET v = ${value}`,
    steps: [o.step],
    ...(o.destructive ? { destructive: true } : {}),
    ...(o.refused === undefined ? {} : { refused: o.refused }),
    ...(o.after === undefined ? {} : { check: async (db: TestDatabase) => expectRows(db, 'SELECT v::text AS v FROM books', [{ v: o.after }]) }),
  };
}

const LOCK = 'table_rewrite, access_exclusive_lock';

const baseline: Case[] = [
  {
    name: 'add a nullable column (safe)',
    main: 'baseline',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    text: `1. add column books.subtitle
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ADD COLUMN "subtitle" text;`,
    check: async (db) => expectRows(db, 'SELECT subtitle FROM books', [{ subtitle: null }]),
  },
  {
    name: 'add a NOT NULL column with a default (safe)',
    main: 'baseline',
    before: base,
    after: withBooks('      rating: { type: int, nullable: false, default: 3 }\n'),
    text: `1. add column books.rating
${EXCLUSIVE('books')}
   ALTER TABLE "public"."books" ADD COLUMN "rating" integer DEFAULT '3'::integer NOT NULL;`,
    check: async (db) => expectRows(db, 'SELECT rating FROM books', [{ rating: 3 }]),
  },
  {
    name: 'add an index (safe)',
    main: 'baseline',
    before: base,
    after: withBooks('', '    indexes:\n      - { columns: [title, status] }\n'),
    text: `1. create index books_title_status_idx on books (title, status)
   ~ index_build: builds index books_title_status_idx, reading the whole table
   ~ share_lock: blocks writes to books while the index is built (SHARE)
   CREATE INDEX "books_title_status_idx" ON "public"."books" ("title", "status");`,
  },
  {
    name: 'add a NOT NULL column without a default to a table with rows is refused at plan time',
    main: 'class 1: main planned it as destructive, and Postgres refused it at apply (23502) even with force',
    before: base,
    after: withBooks('      isbn: { type: string, nullable: false }\n'),
    refused: 'books has rows: a NOT NULL column without a default cannot be added to them',
  },
  {
    name: 'add a NOT NULL column without a default to an empty table (safe)',
    main: 'baseline',
    before: base,
    after: withBooks('      isbn: { type: string, nullable: false }\n'),
    setup: 'DELETE FROM books',
    steps: ['add column books.isbn | access_exclusive_lock'],
  },
  {
    name: 'make a column holding NULLs NOT NULL is refused at plan time',
    main: 'class 1: main planned it, and Postgres refused it at apply (23502) even with force',
    before: base,
    after: yaml(authors + books().replace('pages: { type: int }', 'pages: { type: int, nullable: false }')),
    setup: "INSERT INTO books (title) VALUES ('Emma')",
    refused: 'books.pages holds NULLs, so it cannot become NOT NULL',
  },
  {
    name: 'make a column NOT NULL (destructive)',
    main: 'baseline',
    before: base,
    after: yaml(authors + books().replace('pages: { type: int }', 'pages: { type: int, nullable: false }')),
    steps: ['set NOT NULL on books.pages | correctness, access_exclusive_lock'],
    destructive: true,
  },
  {
    name: 'drop a column a release declared (destructive)',
    main: 'baseline',
    before: base,
    after: yaml(authors + books().replace('      pages: { type: int }\n', '')),
    steps: ['drop column books.pages | deletes_data, access_exclusive_lock'],
    destructive: true,
    check: async (db) => expectRows(db, 'SELECT title FROM books', [{ title: 'Dune' }]),
  },
  {
    name: 'remove a table from the declaration (destructive)',
    main: 'baseline',
    before: yaml(authors + books() + '  reviews:\n    columns:\n      body: { type: string }\n'),
    after: base,
    steps: ['drop table reviews | deletes_data, access_exclusive_lock'],
    destructive: true,
    check: async (db) => expect(await exists(db, 'reviews')).toBe(false),
  },
  {
    name: 'change a default (safe)',
    main: 'baseline',
    before: base,
    after: yaml(authors + books().replace('default: draft', 'default: published')),
    steps: ["set default of books.status to 'published'::text | access_exclusive_lock"],
    check: async (db) => {
      await expectRows(db, "INSERT INTO books (title) VALUES ('New') RETURNING status", [{ status: 'published' }]);
      await expectRows(db, "SELECT status FROM books WHERE title = 'Dune'", [{ status: 'draft' }]);
    },
  },
  {
    name: 'drop an index a release declared (index_dropped, not destructive)',
    main: 'baseline',
    before: withBooks('', '    indexes:\n      - { columns: [title], name: books_by_title }\n'),
    after: base,
    steps: ['drop index books_by_title of books | index_dropped, access_exclusive_lock'],
  },
  {
    name: 'add a unique constraint over distinct values (safe)',
    main: 'baseline',
    before: base,
    after: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    steps: ['add unique constraint books_title_key on books (title) | index_build, access_exclusive_lock'],
  },
  {
    name: 'rename a column with previousNames (safe)',
    main: 'baseline',
    before: base,
    after: yaml(authors + books().replace('pages: { type: int }', 'page_count: { type: int, previousNames: [pages] }')),
    steps: ['rename column books.pages to page_count | access_exclusive_lock'],
    check: async (db) => expectRows(db, 'SELECT page_count FROM books', [{ page_count: 100 }]),
  },
];

/** Class 2: what no release declared is left alone, and a dropped guarantee is not called safe. */
const unmanaged: Case[] = [
  {
    name: 'an index a DBA added survives a release',
    main: 'class 2: main dropped it, classified safe (index_dropped)',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: 'CREATE INDEX dba_books_pages ON books (pages)',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => expect(await exists(db, 'dba_books_pages')).toBe(true),
    cleanup: 'DROP INDEX dba_books_pages',
  },
  {
    name: 'a unique index a DBA added survives a release: uniqueness is not lost',
    main: 'class 2: main dropped it as safe, and duplicates could be written silently',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: 'CREATE UNIQUE INDEX dba_books_title ON books (title)',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => {
      await expect(db.sql`INSERT INTO books (title) VALUES ('Dune')`).rejects.toMatchObject({ code: '23505' });
    },
    cleanup: 'DROP INDEX dba_books_title',
  },
  {
    name: 'a unique constraint a DBA added survives a release',
    main: 'class 2: main dropped it as safe',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: 'ALTER TABLE books ADD CONSTRAINT dba_title_author UNIQUE (title, author_id)',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => expect(await constraintExists(db, 'dba_title_author')).toBe(true),
    cleanup: 'ALTER TABLE books DROP CONSTRAINT dba_title_author',
  },
  {
    name: 'a column and a foreign key a DBA added survive, and no step is destructive',
    main: 'class 2: main dropped the column (deletes_data, so every later release was destructive) and the key',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: "ALTER TABLE books ADD COLUMN editor_id text REFERENCES authors (id); UPDATE books SET editor_id = 'a1'",
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => {
      await expectRows(db, 'SELECT editor_id FROM books', [{ editor_id: 'a1' }]);
      expect(await constraintExists(db, 'books_editor_id_fkey')).toBe(true);
    },
    cleanup: 'ALTER TABLE books DROP COLUMN editor_id',
  },
  {
    name: 'a column a DBA added survives a release without other changes: the plan is empty',
    main: 'class 2: main planned a destructive drop of it on every release',
    before: base,
    after: base,
    setup: "ALTER TABLE books ADD COLUMN legacy_code text DEFAULT 'x'",
    steps: [],
    check: async (db) => expectRows(db, 'SELECT legacy_code FROM books', [{ legacy_code: 'x' }]),
    cleanup: 'ALTER TABLE books DROP COLUMN legacy_code',
  },
  {
    name: 'a partial and an expression index a DBA added survive',
    main: 'class 2: main dropped both as safe',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: "CREATE INDEX dba_long_books ON books (pages) WHERE pages > 500; CREATE INDEX dba_lower_title ON books (lower(title))",
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => {
      expect(await exists(db, 'dba_long_books')).toBe(true);
      expect(await exists(db, 'dba_lower_title')).toBe(true);
    },
    cleanup: 'DROP INDEX dba_long_books; DROP INDEX dba_lower_title',
  },
  {
    name: 'a CHECK constraint a DBA added survives a release',
    main: 'baseline for plans (main could not see it, so it survived); drift.test.ts shows drift now reports it',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: 'ALTER TABLE books ADD CONSTRAINT dba_pages_positive CHECK (pages > 0)',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => expect(await constraintExists(db, 'dba_pages_positive')).toBe(true),
    cleanup: 'ALTER TABLE books DROP CONSTRAINT dba_pages_positive',
  },
  {
    name: 'without a previous release, a column the declaration omits is left alone',
    main: 'class 2: main dropped it (deletes_data)',
    before: base,
    after: yaml(authors + books().replace('      pages: { type: int }\n', '')),
    noPrevious: true,
    steps: [],
    check: async (db) => expectRows(db, 'SELECT pages FROM books', [{ pages: 100 }]),
    cleanup: 'ALTER TABLE books DROP COLUMN pages',
  },
  {
    name: 'without a previous release, an index the declaration omits is left alone',
    main: 'class 2: main dropped it',
    before: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    after: base,
    noPrevious: true,
    steps: [],
    check: async (db) => expect(await exists(db, 'books_title_idx')).toBe(true),
    cleanup: 'DROP INDEX books_title_idx',
  },
  {
    name: 'dropping a unique constraint a release declared removes a guarantee: destructive',
    main: 'class 2: main classified it safe (index_dropped only)',
    before: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    after: base,
    steps: ['drop unique constraint books_title_key of books | correctness, index_dropped, access_exclusive_lock'],
    destructive: true,
  },
  {
    name: 'dropping a unique index a release declared removes a guarantee: destructive',
    main: 'class 2: main classified it safe',
    before: withBooks('', '    indexes:\n      - { columns: [title], unique: true }\n'),
    after: base,
    steps: ['drop index books_title_idx of books | correctness, index_dropped, access_exclusive_lock'],
    destructive: true,
  },
  {
    name: 'a DBA index holding a name the declaration now wants is replaced',
    main: 'baseline: the name is declared, so the object is ours',
    before: base,
    after: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    setup: 'CREATE INDEX books_title_idx ON books (pages)',
    steps: ['drop index books_title_idx of books | index_dropped, access_exclusive_lock', 'create index books_title_idx on books (title) | index_build, share_lock'],
  },
  {
    name: 'a DBA foreign key to a table a release drops refuses the drop with a reason',
    main: 'class 2: main dropped the DBA key silently with the table',
    before: yaml(authors + books() + '  editors:\n    columns:\n      name: { type: string }\n'),
    after: base,
    setup: "ALTER TABLE books ADD COLUMN editor_id text REFERENCES editors (id)",
    refused: 'foreign key books_editor_id_fkey of books (not declared by any release) still references editors',
  },
  {
    name: 'a DBA column with a view on it survives; the view too',
    main: 'class 2: main planned the column drop, which Postgres refused (2BP01)',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    setup: 'ALTER TABLE books ADD COLUMN note text; CREATE VIEW book_notes AS SELECT note FROM books',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    cleanup: 'DROP VIEW book_notes; ALTER TABLE books DROP COLUMN note',
  },
  {
    name: 'without a previous release, an index a DBA added is left alone',
    main: 'class 2: main dropped it',
    before: base,
    after: withBooks('      subtitle: { type: string }\n'),
    noPrevious: true,
    setup: 'CREATE INDEX dba_books_status ON books (status)',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => expect(await exists(db, 'dba_books_status')).toBe(true),
    cleanup: 'DROP INDEX dba_books_status',
  },
  {
    name: 'a foreign key a DBA added between two managed tables survives',
    main: 'class 2: main dropped it',
    before: withBooks('      reviewer_id: { type: string }\n'),
    after: withBooks('      reviewer_id: { type: string }\n      subtitle: { type: string }\n'),
    setup: 'ALTER TABLE books ADD CONSTRAINT dba_reviewer_fk FOREIGN KEY (reviewer_id) REFERENCES authors (id)',
    steps: ['add column books.subtitle | access_exclusive_lock'],
    check: async (db) => expect(await constraintExists(db, 'dba_reviewer_fk')).toBe(true),
    cleanup: 'ALTER TABLE books DROP CONSTRAINT dba_reviewer_fk',
  },
  {
    name: 'a DBA index on a column renamed by the release follows the column and survives',
    main: 'class 2: main dropped it',
    before: base,
    after: yaml(authors + books().replace('pages: { type: int }', 'page_count: { type: int, previousNames: [pages] }')),
    setup: 'CREATE INDEX dba_pages ON books (pages)',
    steps: ['rename column books.pages to page_count | access_exclusive_lock'],
    check: async (db) => expectRows(db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'dba_pages'", [{ indexdef: 'CREATE INDEX dba_pages ON public.books USING btree (page_count)' }]),
    cleanup: 'DROP INDEX dba_pages',
  },
  {
    name: 'a DBA unique key survives a release that drops a declared column beside it',
    main: 'class 2: main dropped the unique key as safe with the column',
    before: withBooks('      isbn: { type: string }\n'),
    after: base,
    setup: 'ALTER TABLE books ADD CONSTRAINT dba_unique_title UNIQUE (title)',
    steps: ['drop column books.isbn | deletes_data, access_exclusive_lock'],
    destructive: true,
    check: async (db) => expect(await constraintExists(db, 'dba_unique_title')).toBe(true),
    cleanup: 'ALTER TABLE books DROP CONSTRAINT dba_unique_title',
  },
];

/** Class 1: every plan applies or is refused at plan time. */
const applies: Case[] = [
  {
    name: 'an id moving from auto_increment to ulid, with the referencing column following',
    main: 'class 1: Postgres refused the plan (42804: foreign key cannot be implemented), every time',
    before: yaml(`
  shelves:
    id: { generate: auto_increment }
    columns:
      label: { type: string }
  slots:
    columns:
      shelf_id: { type: bigint, references: { table: shelves } }
`),
    after: yaml(`
  shelves:
    id: { generate: ulid }
    columns:
      label: { type: string }
  slots:
    columns:
      shelf_id: { type: string, references: { table: shelves } }
`),
    setup: "INSERT INTO shelves (label) VALUES ('top'); INSERT INTO slots (id, shelf_id) VALUES ('s1', 1)",
    steps: [
      'drop foreign key slots_shelf_id_fkey of slots | access_exclusive_lock',
      'drop identity of shelves.id | correctness, access_exclusive_lock',
      'change type of shelves.id from bigint to text | correctness, table_rewrite, access_exclusive_lock',
      'change type of slots.shelf_id from bigint to text | correctness, table_rewrite, access_exclusive_lock',
      'add foreign key slots_shelf_id_fkey on slots (shelf_id) → shelves (id) | share_row_exclusive_lock',
    ],
    destructive: true,
    check: async (db) => expectRows(db, 'SELECT s.shelf_id, h.label FROM slots s JOIN shelves h ON h.id = s.shelf_id', [{ shelf_id: '1', label: 'top' }]),
  },
  {
    name: 'an id moving from client text to auto_increment, with the referencing column following',
    main: 'class 1: Postgres refused the plan (42804), and the identity would have restarted at 1',
    before: yaml(`
  shelves:
    id: { generate: client }
    columns:
      label: { type: string }
  slots:
    columns:
      shelf_id: { type: string, references: { table: shelves } }
`),
    after: yaml(`
  shelves:
    id: { generate: auto_increment }
    columns:
      label: { type: string }
  slots:
    columns:
      shelf_id: { type: bigint, references: { table: shelves } }
`),
    setup: "INSERT INTO shelves (id, label) VALUES ('7', 'top'); INSERT INTO slots (id, shelf_id) VALUES ('s1', '7')",
    steps: [
      'drop foreign key slots_shelf_id_fkey of slots | access_exclusive_lock',
      'change type of shelves.id from text to bigint | correctness, table_rewrite, access_exclusive_lock',
      'change type of slots.shelf_id from text to bigint | correctness, table_rewrite, access_exclusive_lock',
      'make shelves.id an identity column | access_exclusive_lock',
      'continue the identity of shelves.id after its largest value | ',
      'add foreign key slots_shelf_id_fkey on slots (shelf_id) → shelves (id) | share_row_exclusive_lock',
    ],
    destructive: true,
    check: async (db) => expectRows(db, "INSERT INTO shelves (label) VALUES ('new') RETURNING id::text AS id", [{ id: '8' }]),
  },
  {
    name: 'a unique constraint a foreign key rests on becomes a unique index',
    main: 'class 1: Postgres refused dropping the constraint (2BP01: the key depends on it)',
    before: yaml(`
  codes:
    columns:
      code: { type: string, unique: true }
  uses:
    columns:
      code: { type: string, references: { table: codes, column: code } }
`),
    after: yaml(`
  codes:
    columns:
      code: { type: string }
    indexes:
      - { columns: [code], unique: true }
  uses:
    columns:
      code: { type: string, references: { table: codes, column: code } }
`),
    setup: "INSERT INTO codes VALUES ('c1', 'x'); INSERT INTO uses VALUES ('u1', 'x')",
    steps: [
      'drop foreign key uses_code_fkey of uses | access_exclusive_lock',
      'drop unique constraint codes_code_key of codes | index_dropped, access_exclusive_lock',
      'create unique index codes_code_idx on codes (code) | index_build, share_lock',
      'add foreign key uses_code_fkey on uses (code) → codes (code) | share_row_exclusive_lock',
    ],
  },
  {
    name: 'a unique index a foreign key rests on becomes a unique constraint',
    main: 'class 1: Postgres refused dropping the index (2BP01)',
    before: yaml(`
  codes:
    columns:
      code: { type: string }
    indexes:
      - { columns: [code], unique: true }
  uses:
    columns:
      code: { type: string, references: { table: codes, column: code } }
`),
    after: yaml(`
  codes:
    columns:
      code: { type: string, unique: true }
  uses:
    columns:
      code: { type: string, references: { table: codes, column: code } }
`),
    setup: "INSERT INTO codes VALUES ('c1', 'x'); INSERT INTO uses VALUES ('u1', 'x')",
    steps: [
      'drop foreign key uses_code_fkey of uses | access_exclusive_lock',
      'drop index codes_code_idx of codes | index_dropped, access_exclusive_lock',
      'add unique constraint codes_code_key on codes (code) | index_build, access_exclusive_lock',
      'add foreign key uses_code_fkey on uses (code) → codes (code) | share_row_exclusive_lock',
    ],
  },
  {
    name: 'index names exchanged between two tables go through a temporary name',
    main: 'class 1: Postgres refused the first rename (42P07: index names are per schema)',
    before: yaml(`
  left_t:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: idx_one }
  right_t:
    columns:
      b: { type: string }
    indexes:
      - { columns: [b], name: idx_two }
`),
    after: yaml(`
  left_t:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: idx_two }
  right_t:
    columns:
      b: { type: string }
    indexes:
      - { columns: [b], name: idx_one }
`),
    steps: [
      'rename index idx_one of left_t to stk_tmp_',
      'rename index idx_two of right_t to idx_one | share_update_exclusive_lock',
      'rename index stk_tmp_',
    ],
  },
  {
    name: 'index names rotated among three tables',
    main: 'class 1: Postgres refused the renames (42P07)',
    before: yaml(`
  t1:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: ix_a }
  t2:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: ix_b }
  t3:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: ix_c }
`),
    after: yaml(`
  t1:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: ix_b }
  t2:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: ix_c }
  t3:
    columns:
      a: { type: string }
    indexes:
      - { columns: [a], name: ix_a }
`),
    steps: [
      'rename index ix_a of t1 to stk_tmp_',
      'rename index ix_b of t2 to stk_tmp_',
      'rename index ix_c of t3 to ix_a | share_update_exclusive_lock',
      'rename index stk_tmp_',
      'rename index stk_tmp_',
    ],
  },
  {
    name: 'a table named like the identity sequence of another is rejected when declared',
    main: 'class 1: Postgres refused the plan (42P07) or named the sequence books_id_seq1',
    before: base,
    after: withBooks('', '', '  books_id_seq:\n    columns:\n      n: { type: int }\n'),
    invalid: 'the identity sequence name "books_id_seq" of table "books" is already used by table "books_id_seq"',
  },
  {
    name: 'a new table whose name a hand-made sequence holds is refused at plan time',
    main: 'class 1: Postgres refused the plan (42P07)',
    before: base,
    after: withBooks('', '', '  invoices:\n    columns:\n      n: { type: int }\n'),
    setup: 'CREATE SEQUENCE invoices',
    refused: 'the table name invoices is already taken by another object of the schema',
  },
  {
    name: 'a new index whose name an unmanaged table holds is refused at plan time',
    main: 'class 1: Postgres refused the plan (42P07)',
    before: base,
    after: withBooks('', '    indexes:\n      - { columns: [title], name: reports }\n'),
    setup: 'CREATE TABLE reports (id int)',
    refused: 'the index name reports is already taken',
  },
  {
    name: 'a type change under a view is refused at plan time',
    main: 'class 1: Postgres refused the apply (0A000), surfaced as an internal error',
    before: base,
    after: yaml(authors + books().replace('pages: { type: int }', 'pages: { type: bigint }')),
    setup: 'CREATE VIEW long_books AS SELECT title, pages FROM books WHERE pages > 500',
    refused: 'view public.long_books depends on books.pages',
  },
  {
    name: 'dropping a column a view uses is refused at plan time',
    main: 'class 1: Postgres refused the apply (2BP01)',
    before: base,
    after: yaml(authors + books().replace('      pages: { type: int }\n', '')),
    setup: 'CREATE VIEW long_books AS SELECT title, pages FROM books WHERE pages > 500',
    refused: 'view public.long_books depends on books.pages',
  },
  {
    name: 'dropping a table a view reads is refused at plan time',
    main: 'class 1: Postgres refused the apply (2BP01)',
    before: yaml(authors + books() + '  reviews:\n    columns:\n      body: { type: string }\n'),
    after: base,
    setup: 'CREATE VIEW all_reviews AS SELECT body FROM reviews',
    refused: 'view public.all_reviews depends on reviews',
  },
  {
    name: 'a type change under a materialized view is refused at plan time',
    main: 'class 1: Postgres refused the apply (0A000)',
    before: base,
    after: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: json, nullable: false }')),
    setup: 'CREATE MATERIALIZED VIEW titles AS SELECT title FROM books',
    refused: 'materialized view public.titles depends on books.title',
  },
  {
    name: 'a type change under a rule is refused at plan time',
    main: 'class 1: Postgres refused the apply (0A000)',
    before: base,
    after: yaml(authors + books().replace('pages: { type: int }', 'pages: { type: bigint }')),
    setup: 'CREATE TABLE page_log (pages int); CREATE RULE log_pages AS ON UPDATE TO books DO ALSO INSERT INTO page_log VALUES (NEW.pages)',
    refused: 'rule log_pages on public.books depends on books.pages',
  },
  {
    name: 'retyping a column an unmanaged table references is refused at plan time',
    main: 'class 1: Postgres refused the apply (42804)',
    before: yaml(`
  shelves:
    id: { generate: auto_increment }
    columns:
      label: { type: string }
`),
    after: yaml(`
  shelves:
    id: { generate: ulid }
    columns:
      label: { type: string }
`),
    setup: 'CREATE TABLE legacy_slots (id int PRIMARY KEY, shelf_id bigint REFERENCES shelves (id))',
    refused: 'foreign key legacy_slots_shelf_id_fkey of public.legacy_slots depends on shelves.id',
  },
  {
    name: 'a DBA foreign key on a retyped column is dropped and added back as it was',
    main: 'class 1/2: main dropped the DBA key for good',
    before: withBooks('      rank: { type: int }\n', '', '  ranks:\n    columns:\n      n: { type: int, unique: true }\n'),
    after: withBooks('      rank: { type: bigint }\n', '', '  ranks:\n    columns:\n      n: { type: int, unique: true }\n'),
    setup: "INSERT INTO ranks VALUES ('r1', 1); UPDATE books SET rank = 1; ALTER TABLE books ADD CONSTRAINT dba_rank_fk FOREIGN KEY (rank) REFERENCES ranks (n) DEFERRABLE",
    steps: [
      'drop foreign key dba_rank_fk of books | access_exclusive_lock',
      'change type of books.rank from integer to bigint | table_rewrite, access_exclusive_lock',
      'add foreign key dba_rank_fk on books (rank) → ranks (n) | share_row_exclusive_lock',
    ],
    check: async (db) => expectRows(db, "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'dba_rank_fk'", [{ def: 'FOREIGN KEY (rank) REFERENCES ranks(n) DEFERRABLE' }]),
    cleanup: 'ALTER TABLE books DROP CONSTRAINT dba_rank_fk',
  },
  {
    name: 'a DBA foreign key that could not be added back after a type change is refused at plan time',
    main: 'class 1: Postgres refused the apply (42804)',
    before: withBooks('      code: { type: string }\n', '', '  codes:\n    columns:\n      c: { type: string, unique: true }\n'),
    after: withBooks('      code: { type: int }\n', '', '  codes:\n    columns:\n      c: { type: string, unique: true }\n'),
    setup: 'ALTER TABLE books ADD CONSTRAINT dba_code_fk FOREIGN KEY (code) REFERENCES codes (c)',
    refused: 'foreign key dba_code_fk of books would join books.code (integer) to codes.c (text)',
  },
  {
    name: 'a type change under a CHECK a DBA wrote is refused at plan time, naming the constraint',
    main: 'class 1/3: Postgres refused the apply (42883 function length(bigint) does not exist)',
    before: withBooks('      code: { type: string }\n'),
    after: withBooks('      code: { type: bigint }\n'),
    setup: "UPDATE books SET code = '7'; ALTER TABLE books ADD CONSTRAINT dba_code_len CHECK (length(code) < 10)",
    refused: 'check constraint dba_code_len of public.books depends on books.code',
  },
  {
    name: 'dropping a column a DBA CHECK reads is not blocked by it (Postgres drops the CHECK with the column)',
    main: 'baseline',
    before: withBooks('      code: { type: string }\n'),
    after: base,
    setup: "ALTER TABLE books ADD CONSTRAINT dba_code_len CHECK (length(code) < 10)",
    steps: ['drop column books.code | deletes_data, access_exclusive_lock'],
    destructive: true,
  },
];

/** Class 4: the plan knows what casts, keys and logical types do before anything runs. */
const truth: Case[] = [
  retype('boolean → bigint is given an explicit path', 'class 4: Postgres refused the cast (42846) at apply', 'boolean', 'bigint', 'true', {
    step: `change type of books.v from boolean to bigint | correctness, ${LOCK}`,
    destructive: true,
    after: '1',
  }),
  retype('boolean → decimal is given an explicit path', 'class 4: Postgres refused the cast (42846)', 'boolean', '"decimal(4,1)"', 'false', {
    step: `change type of books.v from boolean to numeric(4,1) | correctness, ${LOCK}`,
    destructive: true,
    after: '0.0',
  }),
  retype('bigint → boolean collapses values: deletes_data', 'class 4: main called it correctness and cast with no such cast (42846)', 'bigint', 'boolean', '42', {
    step: `change type of books.v from bigint to boolean | deletes_data, ${LOCK}`,
    destructive: true,
    after: 'true',
  }),
  retype('timestamp → bigint is impossible: refused at plan time', 'class 4: Postgres refused the cast at apply (42846)', 'timestamp', 'bigint', 'now()', {
    step: `change type of books.v from timestamp with time zone to bigint | cannot_apply, ${LOCK}`,
    refused: 'Postgres cannot convert timestamp with time zone to bigint',
  }),
  retype('bytes → boolean is impossible: refused at plan time', 'class 4: Postgres refused the cast at apply', 'bytes', 'boolean', "'\\x01'::bytea", {
    step: `change type of books.v from bytea to boolean | cannot_apply, ${LOCK}`,
    refused: 'Postgres cannot convert bytea to boolean',
  }),
  retype('bytes → string decodes UTF-8, keeping the text', "class 4: main stored the hex text '\\x68656c6c6f' instead", 'bytes', 'string', "convert_to('hello', 'UTF8')", {
    step: `change type of books.v from bytea to text | correctness, ${LOCK}`,
    destructive: true,
    after: 'hello',
  }),
  retype('string → bytes stores the UTF-8 bytes, backslashes included', 'class 4: main read backslashes as escapes and failed (22P02) or changed the bytes', 'string', 'bytes', "'a\\b'", {
    step: `change type of books.v from text to bytea | correctness, ${LOCK}`,
    destructive: true,
    after: '\\x615c62',
  }),
  retype('timestamp → string writes ISO-8601 in UTC, whatever the session', 'class 4: main wrote text in the session time zone and DateStyle', 'timestamp', 'string', "'2024-01-31 12:00:00+02'::timestamptz", {
    step: `change type of books.v from timestamp with time zone to text | correctness, ${LOCK}`,
    destructive: true,
    after: '2024-01-31T10:00:00.000000Z',
  }),
  retype('string → timestamp may fail: correctness', 'baseline', 'string', 'timestamp', "'2024-01-31T10:00:00Z'", {
    step: `change type of books.v from text to timestamp with time zone | correctness, ${LOCK}`,
    destructive: true,
  }),
  retype('decimal(10,2) → decimal(12,2) widens: not destructive', 'class 4: main called it destructive (correctness)', '"decimal(10,2)"', '"decimal(12,2)"', '12.34', {
    step: `change type of books.v from numeric(10,2) to numeric(12,2) | ${LOCK}`,
    after: '12.34',
  }),
  retype('decimal(12,2) → decimal(12,1) rounds: deletes_data', 'class 4: main called it correctness only', '"decimal(12,2)"', '"decimal(12,1)"', '1.25', {
    step: `change type of books.v from numeric(12,2) to numeric(12,1) | deletes_data, ${LOCK}`,
    destructive: true,
    after: '1.3',
  }),
  retype('decimal(12,2) → decimal(5,2) may overflow: correctness', 'baseline', '"decimal(12,2)"', '"decimal(5,2)"', '1.25', {
    step: `change type of books.v from numeric(12,2) to numeric(5,2) | correctness, ${LOCK}`,
    destructive: true,
    after: '1.25',
  }),
  retype('int → bigint widens: not destructive', 'class 4: main called it destructive', 'int', 'bigint', '7', { step: `change type of books.v from integer to bigint | ${LOCK}`, after: '7' }),
  retype('bigint → int may overflow: correctness', 'baseline', 'bigint', 'int', '7', {
    step: `change type of books.v from bigint to integer | correctness, ${LOCK}`,
    destructive: true,
    after: '7',
  }),
  retype('float → int rounds: deletes_data', 'class 4: main called it correctness', 'float', 'int', '2.6', {
    step: `change type of books.v from double precision to integer | deletes_data, ${LOCK}`,
    destructive: true,
    after: '3',
  }),
  retype('bigint → float loses digits beyond 2^53: deletes_data', 'class 4: main called it correctness', 'bigint', 'float', '9007199254740993', {
    step: `change type of books.v from bigint to double precision | deletes_data, ${LOCK}`,
    destructive: true,
    after: '9.007199254740992e+15',
  }),
  retype('int → float is exact: not destructive', 'class 4: main called it destructive', 'int', 'float', '3', { step: `change type of books.v from integer to double precision | ${LOCK}`, after: '3' }),
  retype('decimal → int rounds: deletes_data', 'class 4: main called it correctness', '"decimal(6,2)"', 'int', '2.5', {
    step: `change type of books.v from numeric(6,2) to integer | deletes_data, ${LOCK}`,
    destructive: true,
    after: '3',
  }),
  retype('int → decimal(12,2) widens: not destructive', 'class 4: main called it destructive', 'int', '"decimal(12,2)"', '5', {
    step: `change type of books.v from integer to numeric(12,2) | ${LOCK}`,
    after: '5.00',
  }),
  retype('int → string: correctness', 'baseline', 'int', 'string', '5', { step: `change type of books.v from integer to text | correctness, ${LOCK}`, destructive: true, after: '5' }),
  retype('string → int may fail: correctness', 'baseline', 'string', 'int', "'12'", { step: `change type of books.v from text to integer | correctness, ${LOCK}`, destructive: true, after: '12' }),
  retype('int → json is given an explicit path', 'class 4: Postgres refused the cast (42846) at apply', 'int', 'json', '5', {
    step: `change type of books.v from integer to jsonb | correctness, ${LOCK}`,
    destructive: true,
    after: '5',
  }),
  retype('boolean → json is given an explicit path', 'class 4: Postgres refused the cast (42846) at apply', 'boolean', 'json', 'true', {
    step: `change type of books.v from boolean to jsonb | correctness, ${LOCK}`,
    destructive: true,
    after: 'true',
  }),
  retype('json → string: correctness', 'baseline', 'json', 'string', `'{"a": 1}'`, { step: `change type of books.v from jsonb to text | correctness, ${LOCK}`, destructive: true, after: '{"a": 1}' }),
  retype('string → json may fail: correctness', 'baseline', 'string', 'json', `'[1]'`, { step: `change type of books.v from text to jsonb | correctness, ${LOCK}`, destructive: true, after: '[1]' }),
  retype('json → int is impossible: refused at plan time', 'class 4: Postgres failed at apply on non-numeric JSON', 'json', 'int', `'"x"'`, {
    step: `change type of books.v from jsonb to integer | cannot_apply, ${LOCK}`,
    refused: 'Postgres cannot convert jsonb to integer',
  }),
  {
    name: 'a type change on an empty table is not destructive (the plan probes for rows)',
    main: 'class 4: main (and the operator, which never probed) called it destructive',
    before: withBooks('      v: { type: string }\n'),
    after: withBooks('      v: { type: int }\n'),
    setup: 'DELETE FROM books',
    steps: [`change type of books.v from text to integer | ${LOCK}`],
  },
  {
    name: 'a unique key over duplicate values is refused at plan time',
    main: 'class 4: Postgres refused the apply (23505)',
    before: base,
    after: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    setup: "INSERT INTO books (title) VALUES ('Dune')",
    refused: 'books (title) already holds duplicate values, so books_title_key cannot be built',
  },
  {
    name: 'a unique index over duplicate values is refused at plan time',
    main: 'class 4: Postgres refused the apply (23505)',
    before: base,
    after: withBooks('', '    indexes:\n      - { columns: [title, status], unique: true }\n'),
    setup: "INSERT INTO books (title) VALUES ('Dune')",
    refused: 'books (title, status) already holds duplicate values, so books_title_status_idx cannot be built',
  },
  retype('string → json over text that is not JSON is refused at plan time, with what Postgres said', 'class 4: Postgres refused the apply (22P02)', 'string', 'json', "'v0'", {
    step: `change type of books.v from text to jsonb | cannot_apply, ${LOCK}`,
    refused: 'books.v holds values that cannot be converted from text to jsonb (Postgres says 22P02: invalid input syntax for type json)',
  }),
  retype('string → int over text that is not a number is refused at plan time, without the value', 'class 4: Postgres refused the apply (22P02)', 'string', 'int', "'secret-v1'", {
    step: `change type of books.v from text to integer | cannot_apply, ${LOCK}`,
    refused: 'books.v holds values that cannot be converted from text to integer (Postgres says 22P02: invalid input syntax for type integer: "…")',
  }),
  retype('bigint → int over a value beyond int is refused at plan time', 'class 4: Postgres refused the apply (22003)', 'bigint', 'int', '5000000000', {
    step: `change type of books.v from bigint to integer | cannot_apply, ${LOCK}`,
    refused: 'Postgres says 22003: integer out of range',
  }),
  {
    name: 'a foreign key over values the referenced table lacks is refused at plan time',
    main: 'class 4: Postgres refused the apply (23503)',
    before: withBooks('      editor: { type: string }\n'),
    after: withBooks('      editor: { type: string, references: { table: authors } }\n'),
    setup: "UPDATE books SET editor = 'nobody'",
    refused: 'books (editor) holds values that authors (id) lacks, so books_editor_fkey cannot be added',
  },
  {
    name: 'a new column whose default the referenced table lacks, with a foreign key, is refused at plan time',
    main: 'class 4: Postgres refused the apply (23503)',
    before: base,
    after: withBooks("      editor: { type: string, default: it's, references: { table: authors } }\n"),
    refused: 'books (editor) holds values that authors (id) lacks, so books_editor_fkey cannot be added',
  },
  {
    name: 'a foreign key over values the referenced table holds (and NULLs) applies',
    main: 'baseline',
    before: withBooks('      editor: { type: string }\n'),
    after: withBooks('      editor: { type: string, references: { table: authors } }\n'),
    setup: "UPDATE books SET editor = 'a1'; INSERT INTO books (title) VALUES ('Emma')",
    steps: ['add foreign key books_editor_fkey on books (editor) → authors (id) | share_row_exclusive_lock'],
  },
  {
    name: 'a unique key over NULLs only is built (NULLs are distinct)',
    main: 'baseline',
    before: withBooks('      isbn: { type: string }\n'),
    after: withBooks('      isbn: { type: string, unique: true }\n'),
    setup: "INSERT INTO books (title) VALUES ('Emma')",
    steps: ['add unique constraint books_isbn_key on books (isbn) | index_build, access_exclusive_lock'],
  },
  {
    name: 'json → array over values that are not arrays is refused at plan time',
    main: 'class 4: main saw no change at all (both jsonb)',
    before: withBooks('      tags: { type: json }\n'),
    after: withBooks('      tags: { type: array, items: string }\n'),
    setup: `UPDATE books SET tags = '{"a": 1}'`,
    refused: 'books.tags holds values that are not array of string',
  },
  {
    name: 'json → array over arrays checks the values and applies',
    main: 'class 4: main saw no change at all',
    before: withBooks('      tags: { type: json }\n'),
    after: withBooks('      tags: { type: array, items: string }\n'),
    setup: `UPDATE books SET tags = '["a", "b"]'`,
    steps: ['check that every value of books.tags is array of string (was json) | correctness'],
    destructive: true,
  },
  {
    name: 'array items string → int over strings is refused at plan time',
    main: 'class 4: main saw no change at all',
    before: withBooks('      tags: { type: array, items: string }\n'),
    after: withBooks('      tags: { type: array, items: int }\n'),
    setup: `UPDATE books SET tags = '["a"]'`,
    refused: 'books.tags holds values that are not array of int',
  },
  {
    name: 'array items int → float over numbers checks the values and applies',
    main: 'class 4: main saw no change at all',
    before: withBooks('      tags: { type: array, items: int }\n'),
    after: withBooks('      tags: { type: array, items: float }\n'),
    setup: `UPDATE books SET tags = '[1, 2.5e0]'`,
    steps: ['check that every value of books.tags is array of float (was array of int) | correctness'],
    destructive: true,
  },
  {
    name: 'an unquoted integer default beyond 2^53 is rejected, not rounded',
    main: 'class 4: main silently stored 9007199254740992',
    before: base,
    after: withBooks('      big: { type: bigint, default: 9007199254740993 }\n'),
    invalid: 'is beyond 2^53, where an unquoted number is rounded when the file is read; write it as a quoted string',
  },
  {
    name: 'a quoted integer default beyond 2^53 is exact',
    main: 'baseline: the quoted form is the exact one',
    before: base,
    after: withBooks('      big: { type: bigint, default: "9007199254740993" }\n'),
    steps: ['add column books.big | access_exclusive_lock'],
    check: async (db) => expectRows(db, 'SELECT big::text AS big FROM books', [{ big: '9007199254740993' }]),
  },
  {
    name: 'a column becoming an identity continues after the largest value',
    main: 'class 4: main started the sequence at 1, so the next insert collided (23505)',
    before: yaml(`
  tickets:
    id: { generate: client }
    columns:
      label: { type: string }
`),
    after: yaml(`
  tickets:
    id: { generate: auto_increment }
    columns:
      label: { type: string }
`),
    setup: "INSERT INTO tickets VALUES ('41', 'a'), ('9', 'b')",
    steps: [
      'change type of tickets.id from text to bigint | correctness, table_rewrite, access_exclusive_lock',
      'make tickets.id an identity column | access_exclusive_lock',
      'continue the identity of tickets.id after its largest value | ',
    ],
    destructive: true,
    check: async (db) => expectRows(db, "INSERT INTO tickets (label) VALUES ('c') RETURNING id::int AS id", [{ id: 42 }]),
  },
  {
    name: 'a column becoming an identity on an empty table starts at 1',
    main: 'class 4: main had no step continuing the identity (here it happened to start right)',
    before: yaml(`
  tickets:
    id: { generate: client }
    columns:
      label: { type: string }
`),
    after: yaml(`
  tickets:
    id: { generate: auto_increment }
    columns:
      label: { type: string }
`),
    steps: [
      'change type of tickets.id from text to bigint | table_rewrite, access_exclusive_lock',
      'make tickets.id an identity column | access_exclusive_lock',
      'continue the identity of tickets.id after its largest value | ',
    ],
    check: async (db) => expectRows(db, "INSERT INTO tickets (label) VALUES ('c') RETURNING id::int AS id", [{ id: 1 }]),
  },
  retype('text → decimal(6,2) rounds: deletes_data', 'class 4: main called it correctness', 'string', '"decimal(6,2)"', "'1.255'", {
    step: `change type of books.v from text to numeric(6,2) | deletes_data, ${LOCK}`,
    destructive: true,
    after: '1.26',
  }),
  retype('float → decimal(6,2) rounds: deletes_data', 'class 4: main called it correctness', 'float', '"decimal(6,2)"', '1.005', {
    step: `change type of books.v from double precision to numeric(6,2) | deletes_data, ${LOCK}`,
    destructive: true,
    after: '1.01',
  }),
  retype('int → boolean collapses values: deletes_data', 'class 4: main called it correctness', 'int', 'boolean', '7', {
    step: `change type of books.v from integer to boolean | deletes_data, ${LOCK}`,
    destructive: true,
    after: 'true',
  }),
  retype('bytes → json is impossible: refused at plan time', 'class 4: Postgres refused the cast at apply', 'bytes', 'json', "'\\x01'::bytea", {
    step: `change type of books.v from bytea to jsonb | cannot_apply, ${LOCK}`,
    refused: 'Postgres cannot convert bytea to jsonb',
  }),
  retype('boolean → timestamp is impossible: refused at plan time', 'class 4: Postgres refused the cast at apply', 'boolean', 'timestamp', 'true', {
    step: `change type of books.v from boolean to timestamp with time zone | cannot_apply, ${LOCK}`,
    refused: 'Postgres cannot convert boolean to timestamp with time zone',
  }),
  {
    name: 'narrowing a decimal on an empty table is not destructive',
    main: 'class 4: main called it destructive without looking',
    before: withBooks('      v: { type: "decimal(12,2)" }\n'),
    after: withBooks('      v: { type: "decimal(12,1)" }\n'),
    setup: 'DELETE FROM books',
    steps: [`change type of books.v from numeric(12,2) to numeric(12,1) | ${LOCK}`],
  },
  {
    name: 'a two-column unique index over duplicate pairs is refused at plan time',
    main: 'class 4: Postgres refused the apply (23505)',
    before: base,
    after: withBooks('', '    indexes:\n      - { columns: [title, author_id], unique: true }\n'),
    setup: "INSERT INTO books (title, author_id) VALUES ('Dune', 'a1')",
    refused: 'books (title, author_id) already holds duplicate values',
  },
];

/** Class 5: table renames. */
const renames: Case[] = [
  {
    name: 'a table renamed with previousNames keeps its rows; keys, indexes and the identity sequence follow',
    main: 'class 5: main dropped the table and created an empty one (deletes_data)',
    before: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    after: yaml(authors + books('', '    indexes:\n      - { columns: [title] }\n').replace('  books:\n', '  novels:\n    previousNames: [books]\n')),
    steps: [
      'rename table books to novels | access_exclusive_lock',
      'rename constraint books_pkey of novels to novels_pkey | access_exclusive_lock',
      'rename constraint books_author_id_fkey of novels to novels_author_id_fkey | access_exclusive_lock',
      'rename index books_title_idx of novels to novels_title_idx | share_update_exclusive_lock',
      'rename the identity sequence of novels.id to novels_id_seq | access_exclusive_lock',
    ],
    check: async (db) => {
      await expectRows(db, 'SELECT title FROM novels', [{ title: 'Dune' }]);
      await expectRows(db, "INSERT INTO novels (title) VALUES ('Emma') RETURNING id::int AS id", [{ id: 2 }]);
    },
  },
  {
    name: 'a referenced table renamed: keys of other tables follow it',
    main: 'class 5: main dropped and re-created it, which its references refused',
    before: base,
    after: yaml(authors.replace('  authors:\n', '  writers:\n    previousNames: [authors]\n') + books().replace('table: authors', 'table: writers')),
    steps: ['rename table authors to writers | access_exclusive_lock', 'rename constraint authors_pkey of writers to writers_pkey | access_exclusive_lock'],
    check: async (db) => expectRows(db, 'SELECT w.name FROM books b JOIN writers w ON w.id = b.author_id', [{ name: 'Ann' }]),
  },
  {
    name: 'a table and one of its columns renamed in the same release',
    main: 'class 5: main lost the table',
    before: base,
    after: yaml(authors + books().replace('  books:\n', '  novels:\n    previousNames: [books]\n').replace('pages: { type: int }', 'page_count: { type: int, previousNames: [pages] }')),
    steps: [
      'rename table books to novels | access_exclusive_lock',
      'rename column novels.pages to page_count | access_exclusive_lock',
      'rename constraint books_pkey of novels to novels_pkey | access_exclusive_lock',
      'rename constraint books_author_id_fkey of novels to novels_author_id_fkey | access_exclusive_lock',
      'rename the identity sequence of novels.id to novels_id_seq | access_exclusive_lock',
    ],
    check: async (db) => expectRows(db, 'SELECT page_count FROM novels', [{ page_count: 100 }]),
  },
  {
    name: 'a previous table name that does not exist creates the table',
    main: 'baseline',
    before: base,
    after: withBooks('', '', '  reviews:\n    previousNames: [critiques]\n    columns:\n      body: { type: string }\n'),
    steps: ['create table reviews | '],
  },
  {
    name: 'a table renamed onto a name a hand-made sequence holds is refused at plan time',
    main: 'class 5: no rename existed',
    before: base,
    after: yaml(authors + books().replace('  books:\n', '  novels:\n    previousNames: [books]\n')),
    setup: 'CREATE SEQUENCE novels',
    refused: 'the table name novels is already taken',
  },
  {
    name: 'a table previous name that another declared table has is rejected',
    main: 'class 5: no rename existed',
    before: base,
    after: withBooks('', '', '  reviews:\n    previousNames: [books]\n    columns:\n      body: { type: string }\n'),
    invalid: '"books" is declared as a table; a previous name must be free',
  },
  {
    name: 'a table renamed without a previous release keeps its rows',
    main: 'class 5: main created an empty table beside the old one',
    before: base,
    after: yaml(authors + books().replace('  books:\n', '  novels:\n    previousNames: [books]\n')),
    noPrevious: true,
    steps: [
      'rename table books to novels | access_exclusive_lock',
      'rename constraint books_pkey of novels to novels_pkey | access_exclusive_lock',
      'rename constraint books_author_id_fkey of novels to novels_author_id_fkey | access_exclusive_lock',
      'rename the identity sequence of novels.id to novels_id_seq | access_exclusive_lock',
    ],
    check: async (db) => expectRows(db, 'SELECT title FROM novels', [{ title: 'Dune' }]),
  },
];

/** Class 6: hazards name every table a step locks. */
const locks: Case[] = [
  {
    name: 'dropping a foreign key locks the referenced table too',
    main: 'class 6: main named only the referencing table',
    before: base,
    after: yaml(authors + books().replace('author_id: { type: string, references: { table: authors } }', 'author_id: { type: string }')),
    text: `1. drop foreign key books_author_id_fkey of books
${EXCLUSIVE('books and authors')}
   ALTER TABLE "public"."books" DROP CONSTRAINT "books_author_id_fkey";`,
  },
  {
    name: 'adding a foreign key locks both tables',
    main: 'baseline',
    before: yaml(authors + books().replace('author_id: { type: string, references: { table: authors } }', 'author_id: { type: string }')),
    after: base,
    text: `1. add foreign key books_author_id_fkey on books (author_id) → authors (id)
   ~ share_row_exclusive_lock: blocks writes to books and authors while existing rows are checked (SHARE ROW EXCLUSIVE)
   ALTER TABLE "public"."books" ADD CONSTRAINT "books_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "public"."authors" ("id");`,
  },
  {
    name: 'retyping a referenced column names the referencing tables through the key steps',
    main: 'class 6: main named only the retyped table (and the plan failed)',
    before: yaml(`
  shelves:
    id: { generate: auto_increment }
  slots:
    columns:
      shelf_id: { type: bigint, references: { table: shelves } }
  racks:
    columns:
      shelf_id: { type: bigint, references: { table: shelves } }
`),
    after: yaml(`
  shelves:
    id: { generate: ulid }
  slots:
    columns:
      shelf_id: { type: string, references: { table: shelves } }
  racks:
    columns:
      shelf_id: { type: string, references: { table: shelves } }
`),
    steps: [
      'drop foreign key racks_shelf_id_fkey of racks | access_exclusive_lock',
      'drop foreign key slots_shelf_id_fkey of slots | access_exclusive_lock',
      'drop identity of shelves.id | correctness, access_exclusive_lock',
      'change type of racks.shelf_id from bigint to text | table_rewrite, access_exclusive_lock',
      'change type of shelves.id from bigint to text | table_rewrite, access_exclusive_lock',
      'change type of slots.shelf_id from bigint to text | table_rewrite, access_exclusive_lock',
      'add foreign key racks_shelf_id_fkey on racks (shelf_id) → shelves (id) | share_row_exclusive_lock',
      'add foreign key slots_shelf_id_fkey on slots (shelf_id) → shelves (id) | share_row_exclusive_lock',
    ],
    mentions: [
      'blocks every read and write of racks and shelves while it runs',
      'blocks every read and write of slots and shelves while it runs',
      'blocks writes to racks and shelves while existing rows are checked',
    ],
    destructive: true,
  },
  {
    name: 'dropping a referencing column drops its key first, locking both tables',
    main: 'class 6: main named only books for the key drop',
    before: base,
    after: yaml(authors + books().replace('      author_id: { type: string, references: { table: authors } }\n', '')),
    mentions: ['blocks every read and write of books and authors while it runs'],
    steps: ['drop foreign key books_author_id_fkey of books | access_exclusive_lock', 'drop column books.author_id | deletes_data, access_exclusive_lock'],
    destructive: true,
  },
];

/** Class 3: what drift used to miss is now modelled, and the plan repairs declared objects. */
const drift: Case[] = [
  {
    name: 'a column collation changed by hand is reset by the plan',
    main: 'class 3: main could not see it',
    before: base,
    after: base,
    setup: 'ALTER TABLE books ALTER COLUMN title TYPE text COLLATE "C"',
    steps: ['reset collation of books.title ("C") to the default | correctness, index_build, access_exclusive_lock'],
    destructive: true,
  },
  {
    name: 'an invalid index (a failed concurrent build) is rebuilt',
    main: 'class 3: main took the invalid index for a valid one',
    before: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    after: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    setup: "UPDATE pg_catalog.pg_index SET indisvalid = false WHERE indexrelid = 'books_title_idx'::regclass",
    steps: ['drop index books_title_idx of books | index_dropped, access_exclusive_lock', 'create index books_title_idx on books (title) | index_build, share_lock'],
  },
  {
    name: 'a declared unique key made DEFERRABLE by hand is rebuilt as declared',
    main: 'class 3: main could not see it',
    before: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    after: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    setup: 'ALTER TABLE books DROP CONSTRAINT books_title_key, ADD CONSTRAINT books_title_key UNIQUE (title) DEFERRABLE INITIALLY DEFERRED',
    steps: [
      'drop unique constraint books_title_key of books | index_dropped, access_exclusive_lock',
      'add unique constraint books_title_key on books (title) | index_build, access_exclusive_lock',
    ],
  },
  {
    name: 'a declared unique key made NULLS NOT DISTINCT by hand is rebuilt as declared',
    main: 'class 3: main could not see it',
    before: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    after: yaml(authors + books().replace('title: { type: string, nullable: false }', 'title: { type: string, nullable: false, unique: true }')),
    setup: 'ALTER TABLE books DROP CONSTRAINT books_title_key, ADD CONSTRAINT books_title_key UNIQUE NULLS NOT DISTINCT (title)',
    steps: [
      'drop unique constraint books_title_key of books | index_dropped, access_exclusive_lock',
      'add unique constraint books_title_key on books (title) | index_build, access_exclusive_lock',
    ],
  },
  {
    name: 'a declared foreign key re-added NOT VALID by hand is re-added validated',
    main: 'class 3: main could not see it',
    before: base,
    after: base,
    setup: 'ALTER TABLE books DROP CONSTRAINT books_author_id_fkey, ADD CONSTRAINT books_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors (id) NOT VALID',
    steps: [
      'drop foreign key books_author_id_fkey of books | access_exclusive_lock',
      'add foreign key books_author_id_fkey on books (author_id) → authors (id) | share_row_exclusive_lock',
    ],
  },
  {
    name: 'a declared index made partial by hand is rebuilt as declared',
    main: 'baseline (main kept the definition of partial indexes)',
    before: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    after: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    setup: 'DROP INDEX books_title_idx; CREATE INDEX books_title_idx ON books (title) WHERE pages > 10',
    steps: ['drop index books_title_idx of books | index_dropped, access_exclusive_lock', 'create index books_title_idx on books (title) | index_build, share_lock'],
  },
  {
    name: 'a declared foreign key made DEFERRABLE by hand is re-added as declared',
    main: 'class 3: main could not see it',
    before: base,
    after: base,
    setup: 'ALTER TABLE books DROP CONSTRAINT books_author_id_fkey, ADD CONSTRAINT books_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors (id) DEFERRABLE INITIALLY DEFERRED',
    steps: [
      'drop foreign key books_author_id_fkey of books | access_exclusive_lock',
      'add foreign key books_author_id_fkey on books (author_id) → authors (id) | share_row_exclusive_lock',
    ],
  },
  {
    name: 'a declared index rebuilt with a non-default collation is rebuilt as declared',
    main: 'class 3: main took it for the declared index',
    before: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    after: withBooks('', '    indexes:\n      - { columns: [title] }\n'),
    setup: 'DROP INDEX books_title_idx; CREATE INDEX books_title_idx ON books (title COLLATE "C")',
    steps: ['drop index books_title_idx of books | index_dropped, access_exclusive_lock', 'create index books_title_idx on books (title) | index_build, share_lock'],
  },
];

const cases: Case[] = [...baseline, ...unmanaged, ...applies, ...truth, ...renames, ...locks, ...drift];

/** Fresh builds of a declaration, shared between the cases that end on the same one. */
const freshDumps = new Map<string, Promise<string>>();
const freshDbs: TestDatabase[] = [];
function freshDump(declared: SchemaIR): Promise<string> {
  const key = canonicalJson(declared);
  let dump = freshDumps.get(key);
  if (dump === undefined) {
    dump = (async () => {
      const fresh = await createTestDatabase('oracle');
      freshDbs.push(fresh);
      await converge(fresh.sql, declared);
      return dumpSchema(fresh.url);
    })();
    freshDumps.set(key, dump);
  }
  return dump;
}

const liveHash = async (db: TestDatabase): Promise<string> => hashSchema((await introspectSchema(db.sql)).ir);
const stepLine = (plan: SchemaPlan): string[] => plan.steps.map((s) => `${s.description} | ${s.hazards.map((h) => h.kind).join(', ')}`);

describe('plan and apply: the table of cases', { timeout: 120_000 }, () => {
  afterAll(async () => {
    await Promise.all(freshDbs.splice(0).map((db) => db.drop()));
  });

  test('covers every class with at least 80 cases that show a failure of the engine before', () => {
    expect(cases.filter((c) => !c.main.startsWith('baseline')).length).toBeGreaterThanOrEqual(80);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    for (const k of ['class 1', 'class 2', 'class 3', 'class 4', 'class 5', 'class 6']) expect(cases.some((c) => c.main.includes(k))).toBe(true);
  });

  test.concurrent.each(cases)('$name', async (c) => {
    const oldIR = declare(c.before);
    if (c.invalid !== undefined) {
      // The declaration itself is rejected, with the reason
      let error: unknown;
      try {
        declare(c.after);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).fieldErrors.map((f) => f.message).join('\n')).toContain(c.invalid);
      return;
    }
    const newIR = declare(c.after);
    const previous = c.noPrevious ? null : oldIR;
    const db = await createTestDatabase('case');
    try {
      // Given a database in the old state, holding rows (and what a DBA made by hand)
      await converge(db.sql, oldIR);
      if (oldIR.tables.books && oldIR.tables.authors) await db.sql.unsafe(SEED);
      if (c.setup) await db.sql.unsafe(c.setup);

      // When the new declaration is planned against it
      const plan = await planFor(db.sql, newIR, { previous });

      // Then every step and its hazards are as expected
      if (c.text !== undefined) expect(stepsText(renderPlan(plan)).trimEnd()).toBe(c.text);
      for (const m of c.mentions ?? []) expect(renderPlan(plan)).toContain(m);
      if (c.steps !== undefined) {
        const lines = stepLine(plan);
        // temporary names carry a hash: compare their fixed part
        expect(lines.map((l, i) => (c.steps?.[i]?.endsWith('stk_tmp_') || c.steps?.[i]?.startsWith('rename index stk_tmp_') ? l.slice(0, c.steps[i]?.length) : l))).toEqual(c.steps);
      }
      if (!c.setup && !c.noPrevious && c.refused === undefined) {
        // the pure diff of the two declarations agrees with the plan made from the live catalog
        expect(diffSchemas(newIR, oldIR, oldIR)).toEqual(plan.steps.map((s) => s.change));
      }

      const before = await liveHash(db);
      if (c.refused !== undefined) {
        // Then the plan is refused at plan time, with the reason; not even force applies it
        const reasons = plan.steps.flatMap((s) => (s.refused ? s.hazards.map((h) => h.message) : []));
        expect(reasons.join('\n')).toContain(c.refused);
        expect(renderPlan(plan)).toContain('refused: step');
        const err = await applyPlan(db.sql, plan, { releaseId: 'r2', force: true }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DestructiveChangeError);
        expect((err as DestructiveChangeError).reason).toBe('PlanRefused');
        expect(await liveHash(db)).toBe(before);
        return;
      }
      expect(plan.steps.some((s) => s.refused)).toBe(false);
      expect(plan.steps.some((s) => s.destructive)).toBe(c.destructive === true);
      if (c.destructive) {
        // Without force nothing changes
        await expect(applyPlan(db.sql, plan, { releaseId: 'r2' })).rejects.toBeInstanceOf(DestructiveChangeError);
        expect(await liveHash(db)).toBe(before);
      }
      await applyPlan(db.sql, plan, { releaseId: 'r2', force: c.destructive === true });

      // Then the catalog and the data are as expected
      await c.check?.(db);

      // and the oracle holds: re-planning is empty, and once the hand-made objects are gone the
      // database dumps exactly like one built fresh from the new declaration
      expect(stepLine(await planFor(db.sql, newIR, { previous: newIR }))).toEqual([]);
      if (c.cleanup) await db.sql.unsafe(c.cleanup);
      const [migrated, fresh] = await Promise.all([dumpSchema(db.url), freshDump(newIR)]);
      expect(migrated).toBe(fresh);
    } finally {
      await db.drop();
    }
  });
});
