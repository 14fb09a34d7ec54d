import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { declareSchema, parseSchemaFiles } from '../schema/index.ts';
import { compilePermissions, parseCondition } from './policy.ts';

const schema = declareSchema(
  parseSchemaFiles([
    {
      path: 'schema/app.yaml',
      text: 'version: 1\ntables:\n  users:\n    columns:\n      email: { type: string }\n      owner_id: { type: string }\n',
    },
  ]),
);

const compile = (text: string) => compilePermissions({ path: 'config/permissions.yaml', text }, schema);

function problems(text: string): string[] {
  try {
    compile(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).fieldErrors.map((f) => `${f.line}:${f.column} ${f.message}`);
  }
  throw new Error('expected a ValidationError');
}

describe('permissions', () => {
  it('compiles ordered rules, a single rule, columns and both condition forms', () => {
    const policy = compile(`tables:
  users:
    select:
      - roles: [admin]
      - roles: [reader]
        columns: [id, email]
        condition: resource.owner_id == request.auth.sub
    delete: { roles: [ops], condition: 'resource.email == "x@example.com"' }
`);
    expect(policy.tables.users).toEqual({
      select: [
        { roles: ['admin'], columns: '*', condition: null },
        { roles: ['reader'], columns: ['id', 'email'], condition: { column: 'owner_id', equals: { kind: 'sub' } } },
      ],
      delete: [{ roles: ['ops'], columns: '*', condition: { column: 'email', equals: { kind: 'literal', value: 'x@example.com' } } }],
    });
  });

  it('names file, line and column of unknown tables, columns and unsupported conditions', () => {
    expect(
      problems(`tables:
  users:
    select:
      roles: [a]
      columns: [nope]
      condition: resource.owner_id != request.auth.sub
  ghosts:
    select: { roles: [a] }
`),
    ).toEqual([
      '5:17 tables.users.select.columns[0]: unknown column "nope" of table users',
      '6:18 tables.users.select.condition: unsupported condition: write resource.<column> == request.auth.sub or resource.<column> == "literal"',
      '7:3 tables.ghosts: unknown table "ghosts" (not declared in schema/)',
    ]);
  });

  it('rejects unknown keys and operations by shape', () => {
    expect(problems('tables:\n  users:\n    upsert: { roles: [a] }\n')).toContainEqual('3:5 tables.users.upsert: unknown key "upsert"');
  });

  it('keeps the condition grammar closed', () => {
    expect(parseCondition('resource.owner_id == request.auth.sub')).toEqual({ column: 'owner_id', equals: { kind: 'sub' } });
    for (const bad of ['true', 'resource.a == resource.b', 'resource.a == request.auth.sub || true', "resource.a == 'x' OR 1=1"]) expect(parseCondition(bad)).toBeUndefined();
  });
});
