import { describe, expect, test } from 'vitest';
import { catalogDefault, declaredDefault, type JsonValue } from './defaults.ts';

describe('catalogDefault', () => {
  // left: what pg_get_expr printed on Postgres 15 for a column of that type
  test.each([
    ['integer', '5', "'5'::integer"],
    ['integer', "'-5'::integer", "'-5'::integer"],
    ['bigint', "'5'::bigint", "'5'::bigint"],
    ['bigint', '5', "'5'::bigint"],
    ['double precision', "'1.5'::double precision", "'1.5'::double precision"],
    ['double precision', '1.5', "'1.5'::double precision"],
    ['double precision', "'1e-07'::double precision", "'1e-7'::double precision"],
    ['numeric', '1.50', "'1.5'::numeric"],
    ['numeric(12,2)', '1.5::numeric(12,2)', "'1.5'::numeric(12,2)"],
    ['numeric', "'-1'::numeric", "'-1'::numeric"],
    ['numeric(10,0)', "'3'::numeric(10,0)", "'3'::numeric(10,0)"],
    ['boolean', 'true', 'true'],
    ['text', "'it''s'::text", "'it''s'::text"],
    ['text', "''::text", "''::text"],
    ['text', "'a::b'::text", "'a::b'::text"],
    ['jsonb', '\'{"a": [1, 2], "b": 1}\'::jsonb', '\'{"a":[1,2],"b":1}\'::jsonb'],
    ['timestamp with time zone', 'now()', 'now()'],
    ['timestamp with time zone', 'CURRENT_TIMESTAMP', 'now()'],
  ])('%s %s → %s', (type, expr, canonical) => {
    expect(catalogDefault(type, expr)).toBe(canonical);
  });

  test('an expression it cannot read is kept verbatim, so it never equals a declared default', () => {
    expect(catalogDefault('text', 'gen_random_uuid()::text')).toBe('gen_random_uuid()::text');
    expect(catalogDefault('integer', "('5'::integer + 1)")).toBe("('5'::integer + 1)");
    expect(catalogDefault('bigint', "nextval('t_id_seq'::regclass)")).toBe("nextval('t_id_seq'::regclass)");
  });
});

describe('declaredDefault', () => {
  test.each([
    ['string', 'text', 'member', "'member'::text"],
    ['string', 'text', "it's", "'it''s'::text"],
    ['int', 'integer', 5, "'5'::integer"],
    ['int', 'integer', '-5', "'-5'::integer"],
    ['bigint', 'bigint', '9223372036854775807', "'9223372036854775807'::bigint"],
    ['float', 'double precision', 0.5, "'0.5'::double precision"],
    ['decimal', 'numeric(12,2)', 1.5, "'1.5'::numeric(12,2)"],
    ['decimal', 'numeric', '010.500', "'10.5'::numeric"],
    ['boolean', 'boolean', false, 'false'],
    ['json', 'jsonb', { b: 1, a: [1, 2] }, '\'{"a":[1,2],"b":1}\'::jsonb'],
    ['timestamp', 'timestamp with time zone', 'now', 'now()'],
  ] as const)('%s %j → %s', (logical, type, value, sql) => {
    expect(declaredDefault(logical, type, value as JsonValue)).toEqual({ sql });
  });

  test('declared and catalog forms of the same default are equal', () => {
    const pairs: [Parameters<typeof declaredDefault>[0], string, Parameters<typeof declaredDefault>[2], string][] = [
      ['int', 'integer', -5, "'-5'::integer"],
      ['bigint', 'bigint', 0, '0'],
      ['decimal', 'numeric(12,2)', 1.5, '1.5::numeric(12,2)'],
      ['json', 'jsonb', { a: 1 }, '\'{"a": 1}\'::jsonb'],
      ['array', 'jsonb', [], "'[]'::jsonb"],
    ];
    for (const [logical, type, value, fromCatalog] of pairs) {
      expect(declaredDefault(logical, type, value)).toEqual({ sql: catalogDefault(type, fromCatalog) });
    }
  });

  test.each([
    ['int', 'integer', 'lots', 'default must be a whole number for an int column (got string "lots")'],
    ['int', 'integer', 3_000_000_000, 'default must be a whole number in the 32-bit range for an int column (got number 3000000000)'],
    ['int', 'integer', 1.5, 'default must be a whole number for an int column (got number 1.5)'],
    ['decimal', 'numeric', 1e21, 'default 1e+21 is written with an exponent; write it out as a quoted decimal string'],
    ['boolean', 'boolean', 'yes', 'default must be true or false for a boolean column (got string "yes")'],
    ['timestamp', 'timestamp with time zone', '2020-01-01', 'default must be "now" for a timestamp column (got string "2020-01-01")'],
    ['bytes', 'bytea', 'x', 'bytes columns cannot have a default'],
    ['string', 'text', 5, 'default must be a string for a string column (got number 5)'],
    ['array', 'jsonb', { a: 1 }, 'default must be a list for an array column (got a mapping)'],
  ] as const)('%s %j is refused', (logical, type, value, error) => {
    expect(declaredDefault(logical, type, value)).toEqual({ error });
  });

  test('array items are checked against the item type', () => {
    expect(declaredDefault('array', 'jsonb', ['a', 1], 'string')).toEqual({ error: 'default list item 1 is not a string' });
    expect(declaredDefault('array', 'jsonb', [1, 2], 'int')).toEqual({ sql: "'[1,2]'::jsonb" });
  });
});
