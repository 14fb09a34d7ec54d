import { readFileSync, readdirSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import schemaFileSchema from '../../schema/schema.schema.json' with { type: 'json' };
import { ValidationError } from '../errors.ts';
import { parseSchemaFiles } from './parse.ts';

const exampleDir = new URL('../../config/schema/', import.meta.url);
const exampleFiles = readdirSync(exampleDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => ({ path: `config/schema/${f}`, text: readFileSync(new URL(f, exampleDir), 'utf8') }));

describe('parseSchemaFiles', () => {
  test('accepts the example schema and applies every default', () => {
    const parsed = parseSchemaFiles(exampleFiles);
    expect(parsed.tables.map((t) => `${t.connection}.${t.name}`)).toEqual([
      'main.comments',
      'analytics.page_views',
      'main.post_tags',
      'main.posts',
      'main.profiles',
      'main.tags',
      'main.users',
    ]);
    const users = parsed.tables.find((t) => t.name === 'users');
    expect(users?.id).toEqual({ name: 'id', generate: 'ulid', previousNames: [] });
    expect(users?.source).toEqual({ path: 'config/schema/users.yaml', line: 5, column: 3 });
    expect(users?.columns.find((c) => c.name === 'name')).toEqual({
      name: 'name',
      type: { type: 'string', precision: null, scale: null },
      items: null,
      nullable: true,
      unique: false,
      default: undefined,
      references: null,
      previousNames: [],
    });
    // a reference without a column is resolved to the target's id
    const comments = parsed.tables.find((t) => t.name === 'comments');
    expect(comments?.columns.find((c) => c.name === 'post_id')?.references).toEqual({ table: 'posts', column: 'id', as: 'post', onDelete: 'cascade', onUpdate: 'no_action' });
  });

  test('the result does not depend on the order the files are given in', () => {
    expect(parseSchemaFiles([...exampleFiles].reverse())).toEqual(parseSchemaFiles(exampleFiles));
  });

  test('parses decimal precision and scale', () => {
    const parsed = parseSchemaFiles([{ path: 's.yaml', text: 'version: 1\ntables:\n  t:\n    columns:\n      a: { type: "decimal(12, 2)" }\n      b: { type: "decimal(7)" }\n      c: { type: decimal }\n' }]);
    expect(parsed.tables[0]?.columns.map((c) => c.type)).toEqual([
      { type: 'decimal', precision: 12, scale: 2 },
      { type: 'decimal', precision: 7, scale: 0 },
      { type: 'decimal', precision: null, scale: null },
    ]);
  });

  test('a reference may target a column made unique by a single-column unique index', () => {
    const text = `version: 1
tables:
  users:
    columns:
      handle: { type: string }
    indexes:
      - { columns: [handle], unique: true }
  posts:
    columns:
      handle: { type: string, references: { table: users, column: handle } }
`;
    expect(() => parseSchemaFiles([{ path: 's.yaml', text }])).not.toThrow();
  });

  test('errors name the file, line and column, and carry a hint', () => {
    let err: unknown;
    try {
      parseSchemaFiles([{ path: 'schema/x.yaml', text: 'version: 1\ntables:\n  t:\n    columns:\n      a: { type: text }\n' }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const v = err as ValidationError;
    expect(v.fieldErrors).toEqual([
      {
        path: 'schema/x.yaml',
        line: 5,
        column: 18,
        message: 'tables.t.columns.a.type: unknown type "text" (expected one of: string, int, bigint, float, decimal, decimal(p,s), boolean, json, timestamp, bytes, array)',
      },
    ]);
    expect(v.message).toBe(`schema is not valid: 1 problem\n  - schema/x.yaml:5:18: ${v.fieldErrors[0]?.message}`);
    expect(v.hint).toContain('schema/schema.schema.json');
  });

  test('schema/schema.schema.json is a valid draft 2020-12 schema that accepts the example files', () => {
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    expect(ajv.validateSchema(schemaFileSchema)).toBe(true);
    const validate = ajv.compile(schemaFileSchema);
    for (const f of exampleFiles) expect(validate(parse(f.text)), f.path).toBe(true);
    expect(validate({ version: 1, tables: { t: { colour: 'red' } } })).toBe(false);
  });

  test('no files is an empty schema', () => {
    expect(parseSchemaFiles([])).toEqual({ tables: [] });
  });
});
