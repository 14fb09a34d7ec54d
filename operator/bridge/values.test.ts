import { describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.ts';
import type { ColumnIR } from '../../core/schema/ir.ts';
import { encodeValue, valueClassOf } from './values.ts';

const col = (type: string, extra: Partial<ColumnIR> = {}): ColumnIR => ({ name: 'c', type, nullable: true, default: null, identity: null, ...extra });

describe('encodeValue', () => {
  it.each([
    ['text', 'hello', { kind: 'plain', value: 'hello' }],
    ['integer', 42, { kind: 'plain', value: 42 }],
    ['bigint', '9007199254740993', { kind: 'plain', value: '9007199254740993' }],
    ['double precision', 1.5, { kind: 'plain', value: 1.5 }],
    ['numeric(3,2)', '1.25', { kind: 'plain', value: '1.25' }],
    ['boolean', false, { kind: 'plain', value: false }],
    ['timestamp with time zone', '2025-01-02T03:04:05Z', { kind: 'plain', value: '2025-01-02T03:04:05Z' }],
    ['bytea', 'AAEC', { kind: 'bytes', value: Buffer.from([0, 1, 2]) }],
    ['jsonb', { a: [1] }, { kind: 'json', value: { a: [1] } }],
  ] as const)('accepts a %s value', (type, value, expected) => {
    expect(encodeValue(col(type), value, 'data')).toEqual(expected);
  });

  it.each([
    ['text', 5],
    ['text', 'nul\u0000byte'],
    ['integer', 2 ** 31],
    ['integer', '5'],
    ['bigint', 1.5],
    ['double precision', 'NaN'],
    ['numeric', '1e'],
    ['boolean', 'true'],
    ['timestamp with time zone', 'yesterday'],
    ['timestamp with time zone', "2025-01-01'; DROP TABLE x; --"],
    ['bytea', 'not base64!'],
    ['uuid', 'nope'],
    ['text', ['a']],
    ['text', { a: 1 }],
  ])('refuses %s ← %j with 400 InvalidValue', (type, value) => {
    const run = () => encodeValue(col(type), value, 'data');
    expect(run).toThrow(UsageError);
    try {
      run();
    } catch (err) {
      expect((err as UsageError).reason).toBe('InvalidValue');
      expect((err as Error).message).not.toContain(JSON.stringify(value));
    }
  });

  it('array columns check their items and are bound as JSON', () => {
    const tags = col('jsonb', { logicalType: 'array', items: 'string' });
    expect(valueClassOf(tags)).toBe('array');
    expect(encodeValue(tags, ['a', 'b'], 'data')).toEqual({ kind: 'json', value: ['a', 'b'] });
    expect(() => encodeValue(tags, ['a', 1], 'data')).toThrow(UsageError);
    expect(() => encodeValue(tags, 'a', 'data')).toThrow(UsageError);
  });

  it('null: IS NULL in where, refused for NOT NULL columns in data; JSON columns cannot be compared', () => {
    expect(encodeValue(col('text', { nullable: false }), null, 'where')).toEqual({ kind: 'null' });
    expect(() => encodeValue(col('text', { nullable: false }), null, 'data')).toThrow(UsageError);
    expect(() => encodeValue(col('jsonb'), { a: 1 }, 'where')).toThrow(UsageError);
  });
});
