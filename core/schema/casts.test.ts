import { describe, expect, test } from 'vitest';
import { castOf, type CastEffect } from './casts.ts';
import { checkServerVersion, UnsupportedServerError } from './introspect.ts';

describe('castOf: the cast matrix', () => {
  test.each([
    ['integer', 'bigint', 'exact'],
    ['bigint', 'integer', 'may_fail'],
    ['integer', 'double precision', 'exact'],
    ['bigint', 'double precision', 'changes_data'],
    ['double precision', 'integer', 'changes_data'],
    ['numeric(10,2)', 'numeric(12,2)', 'exact'],
    ['numeric(12,2)', 'numeric(12,1)', 'changes_data'],
    ['numeric(12,2)', 'numeric(5,2)', 'may_fail'],
    ['numeric(12,2)', 'numeric', 'exact'],
    ['numeric', 'numeric(12,2)', 'changes_data'],
    ['integer', 'numeric(12,2)', 'exact'],
    ['integer', 'numeric(5,0)', 'may_fail'],
    ['bigint', 'numeric(19,0)', 'exact'],
    ['numeric(6,2)', 'integer', 'changes_data'],
    ['numeric(6,0)', 'integer', 'exact'],
    ['integer', 'text', 'reinterprets'],
    ['text', 'integer', 'may_fail'],
    ['text', 'numeric(6,2)', 'changes_data'],
    ['boolean', 'bigint', 'reinterprets'],
    ['bigint', 'boolean', 'changes_data'],
    ['bytea', 'text', 'may_fail'],
    ['text', 'bytea', 'reinterprets'],
    ['timestamp with time zone', 'text', 'reinterprets'],
    ['text', 'timestamp with time zone', 'may_fail'],
    ['timestamp with time zone', 'bigint', 'impossible'],
    ['bytea', 'boolean', 'impossible'],
    ['bytea', 'jsonb', 'impossible'],
    ['jsonb', 'integer', 'impossible'],
    ['integer', 'jsonb', 'reinterprets'],
    ['jsonb', 'boolean', 'may_fail'],
    ['character varying(40)', 'text', 'may_fail'],
  ] as const)('%s → %s is %s', (from, to, effect: CastEffect) => {
    expect(castOf('v', from, to).effect).toBe(effect);
  });

  test('explicit paths where the plain cast would change the data or fail', () => {
    expect(castOf('v', 'bytea', 'text').using).toBe(`pg_catalog.convert_from("v", 'UTF8')`);
    expect(castOf('v', 'text', 'bytea').using).toBe(`pg_catalog.convert_to("v", 'UTF8')`);
    expect(castOf('v', 'boolean', 'bigint').using).toBe('"v"::integer::bigint');
    expect(castOf('v', 'bigint', 'boolean').using).toBe('("v" <> 0)');
    expect(castOf('v', 'integer', 'jsonb').using).toBe('pg_catalog.to_jsonb("v")');
    expect(castOf('v', 'timestamp with time zone', 'text').using).toBe(`pg_catalog.to_char("v" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
    expect(castOf('v', 'integer', 'bigint').using).toBe('"v"::bigint');
    expect(castOf('v', 'timestamp with time zone', 'bigint').using).toBeNull();
  });
});

describe('checkServerVersion', () => {
  test('accepts 15 to 18 and names the version it refuses', () => {
    for (const v of [150004, 160010, 170002, 180001]) expect(() => checkServerVersion(v)).not.toThrow();
    expect(() => checkServerVersion(140011)).toThrow(UnsupportedServerError);
    expect(() => checkServerVersion(140011)).toThrow('Postgres 14 (server_version_num 140011) is not supported by the schema engine; supported major versions: 15, 16, 17, 18');
    expect(() => checkServerVersion(190000)).toThrow('Postgres 19');
  });
});
