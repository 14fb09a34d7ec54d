import { describe, expect, test } from 'vitest';
import { compareSchemas, formatDrift } from './drift.ts';
import { physicalSchema, schemaOf, type TableIR, type SchemaIR } from './ir.ts';
import { declareSchema } from './declare.ts';
import { parseSchemaFiles } from './parse.ts';

function declareYaml(tables: string): SchemaIR {
  return declareSchema(parseSchemaFiles([{ path: 'schema/t.yaml', text: `version: 1\ntables:\n${tables}` }])).main ?? schemaOf([]);
}

const declared = declareYaml(`
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
      age: { type: int, default: 1 }
    indexes:
      - { columns: [age] }
`);
const users = physicalSchema(declared).tables.users as TableIR;

describe('compareSchemas', () => {
  test('no difference gives an empty list; declaration-only fields and column order do not count', () => {
    expect(compareSchemas(declared, physicalSchema(declared))).toEqual([]);
    const reordered = schemaOf([{ ...users, columns: [...users.columns].reverse() }]);
    expect(compareSchemas(declared, reordered)).toEqual([]);
  });

  test('each difference is one typed record with one line', () => {
    const live = schemaOf([
      {
        ...users,
        columns: users.columns.map((c) => (c.name === 'age' ? { ...c, nullable: false, default: null } : c)).filter((c) => c.name !== 'email'),
        uniques: [],
        indexes: [{ name: 'users_age_idx', columns: ['age'], unique: true, definition: null }],
      },
    ]);
    expect(compareSchemas(declared, live).map((d) => [d.kind, d.object, d.message])).toEqual([
      ['missing_column', 'email', 'column users.email is missing'],
      ['column_nullability', 'age', 'column users.age is NOT NULL, declared nullable'],
      ['column_default', 'age', "column users.age has no default, declared '1'::integer"],
      ['missing_unique', 'users_email_key', 'unique constraint users_email_key (email) on users is missing'],
      ['index_definition', 'users_age_idx', 'index users_age_idx on users is unique (age), declared (age)'],
    ]);
    expect(compareSchemas(declared, schemaOf([])).map((d) => d.message)).toEqual(['table users is missing']);
  });

  test('formatDrift adds unmanaged tables as information', () => {
    expect(formatDrift({ differences: [], unmanagedTables: [], unmanagedObjects: [] })).toEqual([]);
    expect(formatDrift({ differences: [], unmanagedTables: ['a', 'b'], unmanagedObjects: [] })).toEqual(['info: unmanaged tables (not declared, left alone): a, b']);
  });
});
