import type { Pair } from './generator.ts';

/**
 * Named cases: every class of failure the generated oracle found on the engine, minimized by
 * fast-check's shrinking (seed and path given; switches as in `found`), written down as the pair
 * the oracle ran. `oracle.test.ts` runs each through the same harness, with `pg_dump` per pair.
 *
 * A case whose class the engine on this branch still fails is skipped with the reason (the
 * `skip` text says what Postgres or the oracle said); its switch is off in `config.ts`. Set
 * STK_ORACLE_SKIPPED=run to run the skipped cases too (they fail until the engine is fixed).
 * Since the engine fixes of issue 15, none is skipped.
 */

export interface NamedCase {
  readonly title: string;
  /** the issue class (issue 15) this case stands for */
  readonly cls: string;
  /** how the generator found it: switches, seed and path of the shrunk counterexample */
  readonly found: string;
  readonly pair: Pair;
  /**
   * `applied`: the issue says the engine must carry it out; `refused`: it must refuse at plan
   * time; `either`: applying correctly or refusing at plan time with a reason both pass.
   */
  readonly expect: 'applied' | 'either' | 'refused';
  /** why it is skipped (what fails on the engine of this branch); undefined: it runs */
  readonly skip?: string;
}

const file = (tables: string): string => `version: 1\ntables:\n${tables.replace(/^\n/, '')}`;

const pair = (p: Partial<Pair> & Pick<Pair, 'v1' | 'v2'>): Pair => ({ rows: [], handmade: [], handmadeAfter: [], ...p });

export const NAMED_CASES: readonly NamedCase[] = [
  {
    title: 'two tables exchange the names of their indexes',
    cls: '1: plan Postgres refuses — names exchanged between tables',
    found: 'STK_ORACLE_SWITCHES=none,exchangeIndexNames STK_ORACLE_SEED=7 path 0:1:1:1:2:2:3:3:4:4:4:4:4:4:4:4:5:5:5:5:0:3:3:3:3:3',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    indexes: [{ columns: [id] }]
  books:
    id: { name: id, generate: ulid }
    indexes: [{ columns: [id] }]
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    indexes: [{ columns: [id], name: books_id_idx }]
  books:
    id: { name: id, generate: ulid }
    indexes: [{ columns: [id], name: authors_id_idx }]
`),
    }),
  },
  {
    title: 'an id moves from ulid to auto_increment and the column that references it follows',
    cls: '1: plan Postgres refuses — type change of a referenced and a referencing column',
    found: 'STK_ORACLE_SWITCHES=none,typeUnderForeignKey,typeSafe,retypeId STK_ORACLE_SEED=7 path 0:0:0:0:1:1:1:1:1:1:1:1:2:1:1:1:1:1:1:1:1:2:2:2:2:2',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true, references: { table: authors, column: id } }
`),
      v2: file(`
  authors:
    id: { name: id, generate: auto_increment }
    columns:
      title: { type: bigint, nullable: false, unique: true, references: { table: authors, column: id } }
`),
    }),
  },
  {
    title: 'a referenced unique column becomes a unique index',
    cls: '1: plan Postgres refuses — form of a unique key a foreign key depends on',
    found: 'STK_ORACLE_SWITCHES=none,uniqueUnderForeignKey,uniqueForm,dropUnique STK_ORACLE_SEED=7 path 1:0:0:0:3:2:2:2:2:3:4:6:6:6:8:8:8:8:8:10:10:10:10:10:10:10:8',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, references: { table: authors, column: pages } }
      pages: { type: string, nullable: false, unique: true }
      price: { type: string, nullable: false, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, references: { table: authors, column: pages } }
      pages: { type: string, nullable: false }
      price: { type: string, nullable: false, unique: true }
    indexes: [{ columns: [pages], unique: true }]
`),
    }),
  },
  {
    title: 'an index a DBA added to a managed table survives an unchanged release',
    cls: '2: objects nobody declared are destroyed — index',
    found: 'STK_ORACLE_SWITCHES=none,handIndex STK_ORACLE_SEED=7 path 0:0:0:0:0:0:0:0:1:1:1',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      handmade: ['CREATE INDEX "hand_ix_1" ON "authors" ("id")'],
      handmadeAfter: ['CREATE INDEX "hand_ix_1" ON "authors" ("id")'],
    }),
  },
  {
    title: 'a column a DBA added to a managed table survives an unchanged release',
    cls: '2: objects nobody declared are destroyed — column',
    found: 'STK_ORACLE_SWITCHES=none,handColumn STK_ORACLE_SEED=7 path 0:0:0:0:0:0:0:0:1:1:1',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      handmade: ['ALTER TABLE "authors" ADD COLUMN "hand_col_1" text'],
      handmadeAfter: ['ALTER TABLE "authors" ADD COLUMN "hand_col_1" text'],
    }),
  },
  {
    title: 'a unique constraint a DBA added to a managed table survives an unchanged release',
    cls: '2: objects nobody declared are destroyed — unique constraint',
    found: 'STK_ORACLE_SWITCHES=none,handUnique STK_ORACLE_SEED=7 path 0:0:0:0:1:0:1:1:1:1:1:1:1:1:1:1:2:2:2',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true }
`),
      handmade: ['ALTER TABLE "authors" ADD CONSTRAINT "hand_uq_1" UNIQUE ("id", "title")'],
      handmadeAfter: ['ALTER TABLE "authors" ADD CONSTRAINT "hand_uq_1" UNIQUE ("id", "title")'],
    }),
  },
  {
    title: 'a text id with a CHECK a DBA wrote for text becomes auto_increment',
    cls: '1/3: plan Postgres refuses — type change under a hand-made CHECK',
    found: 'STK_ORACLE_SWITCHES=none,handCheckText,typeSafe,retypeId STK_ORACLE_SEED=7 path 5:0:0:0:0:0:1:1:1:1:1:2:2:2',
    // the CHECK does not type-check on bigint: the engine must see it and refuse at plan time
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  authors:
    id: { name: id, generate: auto_increment }
`),
      handmade: ['ALTER TABLE "authors" ADD CONSTRAINT "hand_chk_1" CHECK (length("id") < 100000)'],
    }),
  },
  {
    title: 'a column a DBA reads through a view is dropped from the declaration',
    cls: '1: plan Postgres refuses — dependent views',
    found: 'STK_ORACLE_SWITCHES=none,handView,typeSafe,dropColumn STK_ORACLE_SEED=7 path 4:0:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:3:4:2:3',
    // a view the engine does not manage depends on the column: a hazard to report, not a DROP … CASCADE
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      handmade: ['CREATE VIEW "hand_view_1" AS SELECT "title" AS "value" FROM "authors"'],
    }),
  },
  {
    title: 'an auto_increment id is renamed',
    cls: 'new (names): a renamed identity column keeps the old sequence name',
    found: 'STK_ORACLE_SWITCHES=none,renameIdentity STK_ORACLE_SEED=7 path 0:0:3:3:3:3:3:3:3:3:3:3',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: auto_increment }
`),
      v2: file(`
  authors:
    id: { name: pk_1, generate: auto_increment, previousNames: [id] }
`),
    }),
  },
  {
    title: 'a timestamp column becomes an int',
    cls: '4: plan-time truth — a cast Postgres cannot do',
    found: 'STK_ORACLE_SWITCHES=none,typeUnsafe STK_ORACLE_SEED=7 path 0:0:0:0:1:0:5:2:2:2:2:2:2:2:2:2:2:2:3:2:2:2:2:3:3',
    expect: 'either',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: timestamp, nullable: false, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: int, nullable: false, unique: true, default: -5 }
`),
    }),
  },
  {
    title: 'a string column holding text that is not JSON becomes json',
    cls: '4: plan-time truth — a cast the data does not allow',
    found: 'STK_ORACLE_SWITCHES=none,typeUnsafe STK_ORACLE_SEED=7 (soak class "apply-v2 22P02 invalid input syntax for type json"), minimized by hand',
    expect: 'either',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: json }
`),
      rows: [`INSERT INTO "authors" ("id", "title") VALUES ('100', 'v0')`],
    }),
  },
  {
    title: 'a NOT NULL column without a default is added to a table with rows',
    cls: '4: plan-time truth — the operator assumes rows, the CLI probes',
    found: 'STK_ORACLE_SWITCHES=none,addRequiredColumn STK_ORACLE_SEED=7 path 1:1:1:1:1:1:1:0:0:0:0:0:0:0:0:1:0',
    // the rows cannot get a value: refused at plan time, with the reason, whatever the caller
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      added_1: { type: string, nullable: false }
`),
      rows: [`INSERT INTO "authors" ("id") VALUES ('100')`],
    }),
  },
  {
    title: 'a ulid id becomes auto_increment on a table with rows',
    cls: '4: plan-time truth — a column becoming an identity continues after the largest value',
    found: 'STK_ORACLE_SWITCHES=none,becomeIdentity STK_ORACLE_SEED=13 (soak class "oracle identity"), minimized by hand',
    expect: 'either',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  authors:
    id: { name: id, generate: auto_increment }
`),
      rows: [`INSERT INTO "authors" ("id") VALUES ('100')`],
    }),
  },
  {
    title: 'a column holding NULLs becomes NOT NULL',
    cls: '4: plan-time truth — data the change cannot keep (NULLs)',
    found: 'STK_ORACLE_SWITCHES=none,rowConflicts,setNotNull STK_ORACLE_SEED=7 path 1:1:1:2:2:2:2:3:3:3:3:3:0:0:1:0:1:1:1:1:2:2:2:2:2:2:2:2:2:3',
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: true, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true }
`),
      rows: [`INSERT INTO "authors" ("id", "title") VALUES ('100', 'v0')`, `INSERT INTO "authors" ("id", "title") VALUES ('101', NULL)`],
    }),
  },
  {
    title: 'a column holding duplicates becomes unique',
    cls: '4: plan-time truth — a unique key over duplicates',
    found: 'STK_ORACLE_SWITCHES=none,rowConflicts,addUnique STK_ORACLE_SEED=7 path 1:1:1:2:2:2:2:2:3:3:3:3:0:0:3:2:2:2:3:3:3:2:2:4:4:4:4:4:6:6:6:6:6:6:7, minimized by hand',
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, unique: true }
`),
      rows: [`INSERT INTO "authors" ("id", "title") VALUES ('100', 'v0')`, `INSERT INTO "authors" ("id", "title") VALUES ('101', 'v0')`],
    }),
  },
  {
    title: 'a column holding values its new reference does not know gets a foreign key',
    cls: '4: plan-time truth — a foreign key over values missing in the referenced table',
    found: 'STK_ORACLE_SWITCHES=none,rowConflicts,addReference STK_ORACLE_SEED=7 path 19:1:3:2:3:2:3:3:2:2:2:2:2:2:2:2:4:3:3:3:3:3:2:2:2:3:2',
    expect: 'either',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true, references: { table: authors, column: id } }
`),
      rows: [`INSERT INTO "authors" ("id", "title") VALUES ('100', 'v0')`],
    }),
  },
  {
    title: 'a table is declared under the name of another table\'s identity sequence',
    cls: '1: plan Postgres refuses — implicit names not reserved',
    found: 'STK_ORACLE_SWITCHES=none,addTableNamedLikeSequence STK_ORACLE_SEED=7 path 0:0:3:3:3:3:3:3:3:3:3:3',
    // validation must reserve authors_id_seq
    expect: 'refused',
    pair: {
      ...pair({
        v1: file(`
  authors:
    id: { name: id, generate: auto_increment }
`),
        v2: file(`
  authors:
    id: { name: id, generate: auto_increment }
  authors_id_seq:
    id: { name: id, generate: ulid }
`),
      }),
      reservedNames: ['authors_id_seq'],
    },
  },
  {
    title: 'a table is renamed with table-level previousNames',
    cls: '5: table renames',
    found: 'STK_ORACLE_SWITCHES=none,renameTable STK_ORACLE_SEED=7 path 0:0:0:0:0:0:0:0:0:0:0:0:0',
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  moved_1:
    previousNames: [authors]
    id: { name: id, generate: ulid }
`),
      rows: [`INSERT INTO "authors" ("id") VALUES ('100')`],
      // the row must survive the rename (not a drop and a create)
      kept: [{ before: 'authors', after: 'moved_1', id: ['id', 'id'], columns: [['id', 'id']] }],
    }),
  },
  {
    title: 'a table is renamed while its text id becomes auto_increment under a CHECK a DBA wrote for text',
    cls: '1/5: plan Postgres refuses — dependents of a renamed table looked up under its new name',
    found: 'STK_ORACLE_SWITCHES=all STK_ORACLE_SEED=20261206 path 15:1:0:1:1:1:1:1:1:0:0:0:0:1:2:2:2:4:4:4:4:4:4:4:4:4:5:6:6:6 (42883 function length(bigint) does not exist; added column left out)',
    // the CHECK is read under the live name (authors), the type change names the table moved_1
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  moved_1:
    previousNames: [authors]
    id: { name: id, generate: auto_increment }
`),
      rows: [`INSERT INTO "authors" ("id") VALUES ('100')`],
      handmade: ['ALTER TABLE "authors" ADD CONSTRAINT "hand_chk_1" CHECK (length("id") < 100000)'],
      handmadeAfter: ['ALTER TABLE "moved_1" ADD CONSTRAINT "hand_chk_1" CHECK (length("id") < 100000)'],
    }),
  },
  {
    title: 'a table is renamed while the table its column references is dropped',
    cls: '1/5: plan Postgres refuses — a step on a renamed table ran before the rename',
    found: 'STK_ORACLE_SWITCHES=all STK_ORACLE_SEED=20261207 path 22:1:1:2:2:2:2:2:2:2:5:4:4:4:4:4:4:4:4:4:4:5:6:6:6:6:6:8:7:7:8:8:8:8:8:8:8 (42P01 relation "public.moved_1" does not exist)',
    // the foreign key to books is dropped with the new table name, so the rename must come first
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true, references: { table: books, column: id } }
  books:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  moved_1:
    previousNames: [authors]
    id: { name: id, generate: ulid }
    columns:
      title: { type: string, nullable: false, unique: true }
`),
    }),
  },
  {
    title: 'a new column whose default the referenced table lacks gets a foreign key',
    cls: '4: plan-time truth — a foreign key over values missing in the referenced table (a default)',
    found: 'STK_ORACLE_SWITCHES=all STK_ORACLE_SEED=20261206 path 192:0:0:0:0:0:0:3:2:2:2:2:3:3:3:3:3:4:4:4 (23503 violates foreign key constraint "authors_added_1_fkey")',
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      added_1: { type: string, nullable: true, default: "it's", references: { table: authors, column: id } }
`),
      rows: [`INSERT INTO "authors" ("id") VALUES ('100')`],
    }),
  },
  {
    title: 'a declared index loses its name while a DBA index has the same definition',
    cls: '2: objects nobody declared — a DBA index taken over by a rename',
    found: 'STK_ORACLE_SWITCHES=all STK_ORACLE_SEED=424243 path 54:0:0:0:1:2:3:3:3:3:4:3:4:4:4 (the migrated database lacks hand_ix_1: it was renamed to authors_id_idx)',
    // the declared ix_1 is renamed to its default name; the DBA's hand_ix_1 stays as it is
    expect: 'applied',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    indexes:
      - { columns: [id], name: ix_1 }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    indexes:
      - { columns: [id] }
`),
      handmade: ['CREATE INDEX "hand_ix_1" ON "authors" ("id")'],
      handmadeAfter: ['CREATE INDEX "hand_ix_1" ON "authors" ("id")'],
    }),
  },
  {
    title: 'a column a DBA reads through a view widens from int to bigint',
    cls: '1: plan Postgres refuses — type change under a view (0A000)',
    found: 'STK_ORACLE_SWITCHES=none,handView,typeSafe STK_ORACLE_SEED=7 path 0:0:0:0:1:1:1:1:1:1:1:1:1:1:4:2:2:3:3:3:3:3:3:3:3:3:3:5:5:5:6:6:8:0:2:2:2:2:2 (second view left out)',
    expect: 'refused',
    pair: pair({
      v1: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: int, nullable: false, unique: true }
`),
      v2: file(`
  authors:
    id: { name: id, generate: ulid }
    columns:
      title: { type: bigint, nullable: false, unique: true }
`),
      handmade: ['CREATE VIEW "hand_view_1" AS SELECT "title" AS "value" FROM "authors"'],
    }),
  },
];
