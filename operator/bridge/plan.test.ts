import { describe, expect, it } from 'vitest';
import { ForbiddenError, NotFoundError, SantokitError, UsageError } from '../../core/errors.ts';
import { compilePermissions } from '../../core/permissions/policy.ts';
import { declareSchema, parseSchemaFiles } from '../../core/schema/index.ts';
import { parseCall } from './call.ts';
import { planCall, type Caller, type QueryPlan } from './plan.ts';
import { compileServedRelease, type ServedRelease } from './served-release.ts';

const schemaYaml = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false, unique: true }
      name: { type: string }
      owner_id: { type: string }
      tier: { type: string }
      age: { type: int }
      settings: { type: json }
  logs:
    id: { generate: auto_increment }
    columns:
      message: { type: string }
  tags:
    id: { generate: client }
    columns:
      label: { type: string }
`;

const permissionsYaml = `tables:
  users:
    select:
      - roles: [admin]
        columns: ["*"]
      - roles: [reader]
        columns: [id, name]
        condition: 'resource.owner_id == request.auth.sub'
      - roles: [gold]
        columns: [id, name, tier]
        condition: 'resource.tier == "gold"'
      - roles: [writer]
        columns: [id, name, owner_id]
        condition: 'resource.owner_id == request.auth.sub'
    insert:
      - roles: [admin]
        columns: [name, email]
      - roles: [writer]
        columns: [name, email]
        condition: 'resource.owner_id == request.auth.sub'
    update:
      - roles: [writer]
        columns: [name, owner_id]
        condition: 'resource.owner_id == request.auth.sub'
      - roles: [admin]
    delete:
      - roles: [admin]
      - roles: [writer, blind]
        condition: 'resource.owner_id == request.auth.sub'
  logs:
    insert: { roles: [admin] }
  tags:
    insert: { roles: [admin], columns: [label] }
`;

const schema = declareSchema(parseSchemaFiles([{ path: 'schema/app.yaml', text: schemaYaml }]));
const release: ServedRelease = compileServedRelease('rel-test', schema, compilePermissions({ path: 'config/permissions.yaml', text: permissionsYaml }, schema));

const admin: Caller = { sub: 'akadmin', roles: ['admin'] };
const reader: Caller = { sub: 'akreader', roles: ['reader'] };
const writer: Caller = { sub: 'akwriter', roles: ['writer'] };
/** may delete its own rows but read nothing */
const blind: Caller = { sub: 'akblind', roles: ['blind'] };

function plan(caller: Caller, path: string, params: unknown = {}, rel: ServedRelease = release): QueryPlan {
  return planCall(rel, parseCall({ path, params }), caller);
}

function refusal(run: () => unknown): { type: string; status: number; code: string; message: string } {
  try {
    run();
  } catch (err) {
    const e = err as SantokitError;
    return { type: e.constructor.name, status: e.status, code: e.reason, message: e.message };
  }
  throw new Error('expected a refusal');
}

describe('permission decisions', () => {
  it('the first rule whose roles match decides: admin reads every column, unconditioned', () => {
    const p = plan(admin, 'db/users/select');
    expect(p).toMatchObject({ kind: 'select', columns: ['id', 'email', 'name', 'owner_id', 'tier', 'age', 'settings'], filters: [] });
  });

  it('a caller with several roles is decided by the earliest matching rule, not the most generous', () => {
    const p = plan({ sub: 'akboth', roles: ['reader', 'admin'] }, 'db/users/select');
    expect(p).toMatchObject({ columns: ['id', 'email', 'name', 'owner_id', 'tier', 'age', 'settings'] });
    const q = plan({ sub: 'akboth', roles: ['gold', 'reader'] }, 'db/users/select');
    // reader's rule comes before gold's in the file
    expect(q).toMatchObject({ columns: ['id', 'name'], filters: [{ column: 'owner_id', value: { kind: 'plain', value: 'akboth' } }] });
  });

  it('columns limit what select returns, and an auth.sub condition becomes a bound predicate ANDed with where', () => {
    const p = plan(reader, 'db/users/select', { where: { name: 'Ann' } });
    expect(p).toMatchObject({
      columns: ['id', 'name'],
      filters: [
        { column: 'name', value: { kind: 'plain', value: 'Ann' } },
        { column: 'owner_id', value: { kind: 'plain', value: 'akreader' } },
      ],
    });
  });

  it('a literal condition becomes a bound predicate', () => {
    expect(plan({ sub: 'akg', roles: ['gold'] }, 'db/users/select')).toMatchObject({ filters: [{ column: 'tier', value: { kind: 'plain', value: 'gold' } }] });
  });

  it.each([
    ['no rule for the role', { sub: 'x', roles: ['nobody'] }, 'db/users/select', {}, 403, 'PermissionDenied'],
    ['no rule for the operation', reader, 'db/users/delete', { where: { id: 'u1' } }, 403, 'PermissionDenied'],
    ['no rules for the table', admin, 'db/tags/select', {}, 403, 'PermissionDenied'],
    ['selecting a column the rule hides', reader, 'db/users/select', { select: ['id', 'email'] }, 403, 'ColumnNotAllowed'],
    ['filtering on a column the rule hides', reader, 'db/users/select', { where: { email: 'a@b.c' } }, 403, 'ColumnNotAllowed'],
    ['ordering by a column the rule hides', reader, 'db/users/select', { orderBy: { email: 'asc' } }, 403, 'ColumnNotAllowed'],
    ['writing a column the insert rule does not list', admin, 'db/users/insert', { data: { email: 'a@b.c', tier: 'gold' } }, 403, 'ColumnNotAllowed'],
    ['updating a column the update rule does not list', writer, 'db/users/update', { where: { id: 'u1' }, data: { email: 'x@y.z' } }, 403, 'ColumnNotAllowed'],
    ['inserting a row for another owner', writer, 'db/users/insert', { data: { email: 'a@b.c', owner_id: 'other' } }, 403, 'ColumnNotAllowed'],
    ['moving a row out of the condition', writer, 'db/users/update', { where: { id: 'u1' }, data: { owner_id: 'someone-else' } }, 403, 'ConditionViolated'],
    ['updating where a column the caller cannot read (an affected-count oracle)', writer, 'db/users/update', { where: { id: 'u1', email: 'a@b.c' }, data: { name: 'x' } }, 403, 'ColumnNotAllowed'],
    ['deleting where a column the caller cannot read', writer, 'db/users/delete', { where: { tier: 'gold' } }, 403, 'ColumnNotAllowed'],
    ['deleting where any column without a select rule but the condition column', blind, 'db/users/delete', { where: { id: 'u1' } }, 403, 'ColumnNotAllowed'],
    ['filtering a select on a writable but unreadable column', writer, 'db/users/select', { where: { email: 'a@b.c' } }, 403, 'ColumnNotAllowed'],
    ['an unknown table', admin, 'db/nope/select', {}, 404, 'UnknownTable'],
    ['an unknown column in where', admin, 'db/users/select', { where: { nope: 1 } }, 400, 'UnknownColumn'],
    ['an unknown column in select', admin, 'db/users/select', { select: ['nope'] }, 400, 'UnknownColumn'],
    ['an unknown column in orderBy', admin, 'db/users/select', { orderBy: { nope: 'asc' } }, 400, 'UnknownColumn'],
    ['an unknown column in data', admin, 'db/users/insert', { data: { nope: 1 } }, 400, 'UnknownColumn'],
    ['a wrong value type', admin, 'db/users/select', { where: { age: 'ten' } }, 400, 'InvalidValue'],
    ['a fractional integer', admin, 'db/users/select', { where: { age: 1.5 } }, 400, 'InvalidValue'],
    ['an object as a where value', admin, 'db/users/select', { where: { name: { $ne: 1 } } }, 400, 'InvalidValue'],
    ['null for a NOT NULL column', admin, 'db/users/insert', { data: { email: null } }, 400, 'InvalidValue'],
    ['a caller-supplied id under a generating policy', admin, 'db/users/insert', { data: { id: 'mine', email: 'a@b.c' } }, 400, 'IdGenerated'],
    ['a caller-supplied id under auto_increment', admin, 'db/logs/insert', { data: { id: 5, message: 'hi' } }, 400, 'IdGenerated'],
    ['no id under the client policy', admin, 'db/tags/insert', { data: { label: 'x' } }, 400, 'IdRequired'],
  ] as const)('refuses %s', (_what, caller, path, params, status, code) => {
    const r = refusal(() => plan(caller, path, params));
    expect(r.status).toBe(status);
    expect(r.code).toBe(code);
  });

  it('names the forbidden column in the message', () => {
    expect(refusal(() => plan(admin, 'db/users/insert', { data: { email: 'a@b.c', tier: 'gold' } })).message).toContain('column tier of table users');
  });

  it('never puts a value in a message', () => {
    const r = refusal(() => plan(admin, 'db/users/select', { where: { age: "1; DROP TABLE users" } }));
    expect(r.message).not.toContain('DROP');
  });
});

describe('plans', () => {
  it('insert under a condition fills the condition column with the caller; a matching value is accepted', () => {
    expect(plan(writer, 'db/users/insert', { data: { email: 'a@b.c' } })).toMatchObject({
      kind: 'insert',
      values: [
        ['id', { kind: 'plain', value: expect.stringMatching(/^[0-9A-Z]{26}$/) }],
        ['email', { kind: 'plain', value: 'a@b.c' }],
        ['owner_id', { kind: 'plain', value: 'akwriter' }],
      ],
      // email is written but not readable by the writer's select rule: not echoed back
      returning: ['id', 'owner_id'],
    });
  });

  it('where of update and delete may name readable columns and the condition column; without a select rule only the condition column', () => {
    expect(plan(writer, 'db/users/delete', { where: { name: 'x', owner_id: 'akwriter' } })).toMatchObject({ kind: 'delete' });
    expect(plan(blind, 'db/users/delete', { where: { owner_id: 'akblind' } })).toMatchObject({
      filters: [
        { column: 'owner_id', value: { kind: 'plain', value: 'akblind' } },
        { column: 'owner_id', value: { kind: 'plain', value: 'akblind' } },
      ],
    });
  });

  it('an insert by a caller with no select rule answers with the id only', () => {
    const rel = compileServedRelease('rel-w', schema, { version: 1, tables: { users: { insert: [{ roles: ['w'], columns: '*' }] } } });
    expect(plan({ sub: 'akw', roles: ['w'] }, 'db/users/insert', { data: { email: 'a@b.c', name: 'n' } }, rel)).toMatchObject({ returning: ['id'] });
  });

  it('update under a condition ANDs it with where, so another owner\'s row is simply not matched', () => {
    expect(plan(writer, 'db/users/update', { where: { id: 'u1' }, data: { name: 'B' } })).toMatchObject({
      kind: 'update',
      set: [['name', { kind: 'plain', value: 'B' }]],
      filters: [
        { column: 'id', value: { kind: 'plain', value: 'u1' } },
        { column: 'owner_id', value: { kind: 'plain', value: 'akwriter' } },
      ],
    });
  });

  it('where null becomes IS NULL; json values are bound as JSON', () => {
    expect(plan(admin, 'db/users/select', { where: { name: null } })).toMatchObject({ filters: [{ column: 'name', value: { kind: 'null' } }] });
    const p = plan({ sub: 'a', roles: ['admin'] }, 'db/users/update', { where: { id: 'u1' }, data: { settings: { theme: 'dark' } } });
    expect(p).toMatchObject({ set: [['settings', { kind: 'json', value: { theme: 'dark' } }]] });
  });

  it('a client id is always writable; select defaults to the limit cap', () => {
    expect(plan(admin, 'db/tags/insert', { data: { id: 't1', label: 'x' } })).toMatchObject({ values: [['id', { kind: 'plain', value: 't1' }], ['label', { kind: 'plain', value: 'x' }]] });
    expect(plan(admin, 'db/users/select')).toMatchObject({ limit: 1000, offset: 0 });
  });
});

describe('rules the data plane cannot enforce', () => {
  const hand = (condition: unknown): ServedRelease =>
    compileServedRelease('rel-hand', schema, { version: 1, tables: { users: { select: [{ roles: ['reader'], columns: '*', condition }, { roles: ['admin'], columns: '*', condition: null }] } } });

  it.each([
    ['an expression outside the grammar', 'resource.owner_id != request.auth.sub'],
    ['a compiled condition of an unknown kind', { column: 'owner_id', equals: { kind: 'regex', value: '.*' } }],
    ['a condition on a column the table lacks', { column: 'nope', equals: { kind: 'sub' } }],
    ['a condition that is not an object', 42],
  ])('%s is a 400 when it decides, never a pass', (_what, condition) => {
    const r = refusal(() => plan(reader, 'db/users/select', {}, hand(condition)));
    expect(r).toMatchObject({ status: 400, code: 'UnsupportedCondition' });
    // a valid rule of another role still works
    expect(plan(admin, 'db/users/select', {}, hand(condition))).toMatchObject({ kind: 'select' });
  });

  it('a rule whose roles cannot be read matches nobody (denies)', () => {
    const rel = compileServedRelease('rel-hand', schema, { version: 1, tables: { users: { select: [{ roles: 'admin', columns: '*' }] } } });
    expect(refusal(() => plan(admin, 'db/users/select', {}, rel))).toMatchObject({ status: 403 });
  });
});

it('error classes are the shared hierarchy', () => {
  expect(() => plan(admin, 'db/nope/select')).toThrow(NotFoundError);
  expect(() => plan(reader, 'db/users/delete', { where: { id: 'x' } })).toThrow(ForbiddenError);
  expect(() => plan(admin, 'db/users/select', { where: { nope: 1 } })).toThrow(UsageError);
});

describe('ordering and keyset paging', () => {
  const postsYaml = `version: 1
tables:
  posts:
    id: { generate: ulid }
    columns:
      author: { type: string, nullable: false }
      created_at: { type: timestamp, nullable: false, default: now }
      title: { type: string }
      rank: { type: int }
      secret: { type: string }
      slug: { type: string, nullable: false, unique: true }
      score: { type: int, nullable: false, default: 0 }
    indexes:
      - { columns: [created_at, id] }
      - { columns: [secret] }
      - { columns: [rank], unique: true }
      - { columns: [score] }
`;
  const postsPermissions = `tables:
  posts:
    select:
      - roles: [admin]
      - roles: [reader]
        columns: [id, author, created_at, title, rank, slug, score]
        condition: 'resource.author == request.auth.sub'
      - roles: [noid]
        columns: [title, score]
`;
  const postsSchema = declareSchema(parseSchemaFiles([{ path: 'schema/posts.yaml', text: postsYaml }]));
  const posts = compileServedRelease('rel-posts', postsSchema, compilePermissions({ path: 'config/permissions.yaml', text: postsPermissions }, postsSchema));
  const noid: Caller = { sub: 'aknoid', roles: ['noid'] };
  const select = (caller: Caller, params: unknown) => plan(caller, 'db/posts/select', params, posts);

  it('the orderable columns are computed once per release: the primary key, unique constraints and indexes, each by its leading column', () => {
    const table = posts.tables.get('posts')!;
    expect([...table.orderable].sort()).toEqual(['created_at', 'id', 'rank', 'score', 'secret', 'slug']);
    expect(table.uniqueKeys).toEqual([['id'], ['slug'], ['rank']]);
  });

  it.each([
    ['the primary key', { id: 'asc' }],
    ['a unique constraint', { slug: 'desc' }],
    ['a unique index', { rank: 'asc' }],
    ['the leading column of a declared index', { created_at: 'desc' }],
    ['an indexed column first, then any readable column to break ties', { created_at: 'desc', title: 'asc' }],
  ])('accepts orderBy on %s', (_what, orderBy) => {
    expect(select(reader, { orderBy })).toMatchObject({ kind: 'select', orderBy: Object.entries(orderBy), after: null });
  });

  it('refuses orderBy on an unindexed column with OrderByNotIndexed, listing only the indexed columns the caller can read', () => {
    const r = refusal(() => select(reader, { orderBy: { title: 'asc' } }));
    expect(r).toMatchObject({ status: 400, code: 'OrderByNotIndexed' });
    expect(r.message).toContain('id, created_at, rank, slug, score');
    expect(r.message).not.toContain('secret');
    // a column that leads an index but only as the second column does not count either
    expect(refusal(() => select(admin, { orderBy: { author: 'asc', id: 'asc' } }))).toMatchObject({ code: 'OrderByNotIndexed' });
    // the admin reads secret, so it is offered to the admin
    expect(refusal(() => select(admin, { orderBy: { title: 'asc' } })).message).toContain('id, created_at, rank, secret, slug, score');
  });

  it('the hint says how to allow the order: declare an index', () => {
    const e = (() => {
      try {
        select(reader, { orderBy: { title: 'asc' } });
      } catch (err) {
        return err as UsageError;
      }
      throw new Error('expected a refusal');
    })();
    expect(e.hint).toContain('declare an index');
  });

  it('a hidden column stays 403 before any index check, even when it is indexed', () => {
    expect(refusal(() => select(reader, { orderBy: { secret: 'asc' } }))).toMatchObject({ status: 403, code: 'ColumnNotAllowed' });
    expect(refusal(() => select(reader, { orderBy: { title: 'asc', secret: 'asc' } }))).toMatchObject({ status: 403, code: 'ColumnNotAllowed' });
    expect(refusal(() => select(reader, { orderBy: { id: 'asc' }, after: { secret: 'x' } }))).toMatchObject({ status: 403, code: 'ColumnNotAllowed' });
  });

  it('a caller that can read no indexed column is told so, without a column name it cannot read', () => {
    const r = refusal(() => select(noid, { orderBy: { title: 'asc' } }));
    expect(r.message).toContain('score');
    const hand = compileServedRelease('rel-h', postsSchema, { version: 1, tables: { posts: { select: [{ roles: ['t'], columns: ['title', 'author'] }] } } });
    const m = refusal(() => plan({ sub: 't', roles: ['t'] }, 'db/posts/select', { orderBy: { title: 'asc' } }, hand)).message;
    expect(m).toContain('no indexed column');
    expect(m).not.toMatch(/\b(id|created_at|rank|secret|slug|score)\b/);
  });

  it('after without orderBy pages by the id ascending', () => {
    expect(select(reader, { after: { id: '01H' }, limit: 100 })).toMatchObject({
      orderBy: [['id', 'asc']],
      after: { direction: 'asc', values: [{ column: 'id', value: { kind: 'plain', value: '01H' } }] },
      limit: 100,
    });
  });

  it('after with orderBy continues in that order, its values in the orderBy order whatever the order in after', () => {
    expect(select(reader, { orderBy: { score: 'desc', id: 'desc' }, after: { id: 'x', score: 7 } })).toMatchObject({
      orderBy: [
        ['score', 'desc'],
        ['id', 'desc'],
      ],
      after: {
        direction: 'desc',
        values: [
          { column: 'score', value: { kind: 'plain', value: 7 } },
          { column: 'id', value: { kind: 'plain', value: 'x' } },
        ],
      },
    });
  });

  it.each([
    ['a column missing', { orderBy: { score: 'asc', id: 'asc' }, after: { score: 1 } }, 400, 'InvalidAfter'],
    ['an extra column', { orderBy: { id: 'asc' }, after: { id: 'x', title: 't' } }, 400, 'InvalidAfter'],
    ['a column other than the id without orderBy', { after: { slug: 'x' } }, 400, 'InvalidAfter'],
    ['mixed directions', { orderBy: { score: 'asc', id: 'desc' }, after: { score: 1, id: 'x' } }, 400, 'AfterMixedDirections'],
    ['columns that do not identify a row (ties would be skipped)', { orderBy: { score: 'asc' }, after: { score: 1 } }, 400, 'InvalidAfter'],
    ['a timestamp column (answers round it to the millisecond)', { orderBy: { created_at: 'asc', id: 'asc' }, after: { created_at: '2026-01-01T00:00:00.123Z', id: 'x' } }, 400, 'InvalidAfter'],
    ['a nullable column', { orderBy: { rank: 'asc' }, after: { rank: 1 } }, 400, 'InvalidAfter'],
    ['a nullable tie-breaker', { orderBy: { id: 'asc', title: 'asc' }, after: { id: 'x', title: 't' } }, 400, 'InvalidAfter'],
    ['an unindexed first column', { orderBy: { title: 'asc', id: 'asc' }, after: { title: 't', id: 'x' } }, 400, 'OrderByNotIndexed'],
    ['an unknown column', { after: { nope: 1 } }, 400, 'UnknownColumn'],
    ['a wrong type', { orderBy: { score: 'asc', id: 'asc' }, after: { score: '5', id: 'x' } }, 400, 'InvalidValue'],
    ['a fractional int', { orderBy: { score: 'asc', id: 'asc' }, after: { score: 1.5, id: 'x' } }, 400, 'InvalidValue'],
    ['SQL in a value', { orderBy: { score: 'asc', id: 'asc' }, after: { score: "1; DROP TABLE posts; --", id: 'x' } }, 400, 'InvalidValue'],
    ['a nested object', { after: { id: { $gt: '' } } }, 400, 'InvalidValue'],
    ['an array', { after: { id: ['a'] } }, 400, 'InvalidValue'],
    ['null', { after: { id: null } }, 400, 'InvalidValue'],
    ['a number for a text id', { after: { id: 1 } }, 400, 'InvalidValue'],
    ['an empty object', { after: {} }, 400, 'InvalidParams'],
    ['an array instead of an object', { after: ['x'] }, 400, 'InvalidParams'],
    ['a string', { after: 'id > 0' }, 400, 'InvalidParams'],
    ['a hidden column', { orderBy: { id: 'asc' }, after: { id: 'x', secret: 's' } }, 403, 'ColumnNotAllowed'],
  ] as const)('refuses an after with %s', (_what, params, status, code) => {
    const r = refusal(() => select(reader, params));
    expect(r).toMatchObject({ status, code });
    expect(r.message).not.toContain('DROP');
    // the 403 names the column the caller named; no other answer names a hidden column
    if (status !== 403) expect(r.message).not.toContain('secret');
  });

  it('a caller that cannot read the id cannot page by it implicitly', () => {
    expect(refusal(() => select(noid, { after: { id: 'x' } }))).toMatchObject({ status: 403, code: 'ColumnNotAllowed' });
  });

  it('a release with an index the data plane cannot describe (expression, partial) does not offer it', () => {
    const ir = structuredClone(postsSchema) as unknown as { main: { tables: { posts: { indexes: Array<Record<string, unknown>> } } } };
    ir.main.tables.posts.indexes = [{ name: 'posts_lower_title', columns: ['title'], unique: false, definition: 'CREATE INDEX posts_lower_title ON public.posts USING btree (lower(title))' }];
    const rel = compileServedRelease('rel-x', ir, { version: 1, tables: { posts: { select: { roles: ['admin'] } } } });
    expect(rel.tables.get('posts')!.orderable.has('title')).toBe(false);
    expect(refusal(() => plan(admin, 'db/posts/select', { orderBy: { title: 'asc' } }, rel))).toMatchObject({ code: 'OrderByNotIndexed' });
  });
});
