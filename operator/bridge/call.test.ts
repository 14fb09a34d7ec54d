import { describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.ts';
import { MAX_LIMIT, MAX_OFFSET, MAX_VALUE_DEPTH, parseCall, parseCallBody } from './call.ts';

function code(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as UsageError).reason;
  }
  throw new Error('expected a UsageError');
}

describe('parseCall', () => {
  it('parses a select with every parameter, keeping where and orderBy as ordered entries', () => {
    const call = parseCall({ path: 'db/users/select', params: { where: { id: 'u1', name: 'Ann' }, select: ['id', 'name'], orderBy: { name: 'desc' }, limit: 10, offset: 5 } });
    expect(call).toEqual({ table: 'users', op: 'select', params: { where: [['id', 'u1'], ['name', 'Ann']], select: ['id', 'name'], orderBy: [['name', 'desc']], limit: 10, offset: 5 } });
  });

  it(`accepts an offset of ${MAX_OFFSET} and values nested ${MAX_VALUE_DEPTH} deep`, () => {
    expect(parseCall({ path: 'db/users/select', params: { offset: MAX_OFFSET } }).params.offset).toBe(MAX_OFFSET);
    const deep = JSON.parse(`${'['.repeat(MAX_VALUE_DEPTH)}${']'.repeat(MAX_VALUE_DEPTH)}`) as unknown;
    expect(parseCall({ path: 'db/users/insert', params: { data: { settings: deep } } }).params.data).toEqual([['settings', deep]]);
  });

  it('parses after as ordered entries; only select takes it', () => {
    expect(parseCall({ path: 'db/users/select', params: { orderBy: { created_at: 'desc', id: 'desc' }, after: { created_at: '2026-01-01', id: 'u9' } } }).params.after).toEqual([
      ['created_at', '2026-01-01'],
      ['id', 'u9'],
    ]);
    expect(code(() => parseCall({ path: 'db/users/update', params: { where: { id: 'u1' }, data: { name: 'x' }, after: { id: 'u1' } } }))).toBe('InvalidParams');
  });

  it('takes missing params as {} for select', () => {
    expect(parseCall({ path: 'db/users/select' }).params).toEqual({});
  });

  it('keeps a key named __proto__ as a plain entry (it is then an unknown column, not a prototype)', () => {
    const call = parseCallBody('{"path":"db/users/select","params":{"where":{"__proto__":{"x":1}}}}');
    expect(call.params.where).toEqual([['__proto__', { x: 1 }]]);
  });

  it.each([
    ['not JSON', '{"path":', 'InvalidJson'],
    ['an array', '[]', 'InvalidRequest'],
    ['null', 'null', 'InvalidRequest'],
    ['an unknown top-level field', '{"path":"db/users/select","sql":"DROP TABLE users"}', 'InvalidRequest'],
    ['a path that is not a string', '{"path":42}', 'InvalidPath'],
    ['a path outside db/', '{"path":"fn/users/select"}', 'InvalidPath'],
    ['a table name with SQL in it', '{"path":"db/users; DROP TABLE users/select"}', 'InvalidPath'],
    ['a quoted table name', '{"path":"db/\\"users\\"/select"}', 'InvalidPath'],
    ['an unknown operation', '{"path":"db/users/truncate"}', 'InvalidPath'],
    ['params that are not an object', '{"path":"db/users/select","params":[1]}', 'InvalidParams'],
    ['a parameter the operation does not take', '{"path":"db/users/select","params":{"data":{}}}', 'InvalidParams'],
    ['where as a string', '{"path":"db/users/select","params":{"where":"1=1"}}', 'InvalidParams'],
    ['a bad direction', '{"path":"db/users/select","params":{"orderBy":{"name":"sideways"}}}', 'InvalidParams'],
    ['a negative limit', '{"path":"db/users/select","params":{"limit":-1}}', 'InvalidParams'],
    ['a fractional offset', '{"path":"db/users/select","params":{"offset":1.5}}', 'InvalidParams'],
    ['a limit as a string', '{"path":"db/users/select","params":{"limit":"10"}}', 'InvalidParams'],
    [`a limit above ${MAX_LIMIT}`, `{"path":"db/users/select","params":{"limit":${MAX_LIMIT + 1}}}`, 'InvalidParams'],
    [`an offset above ${MAX_OFFSET}`, `{"path":"db/users/select","params":{"offset":${MAX_OFFSET + 1}}}`, 'InvalidParams'],
    [`a data value nested deeper than ${MAX_VALUE_DEPTH}`, `{"path":"db/users/insert","params":{"data":{"settings":${'['.repeat(MAX_VALUE_DEPTH + 1)}${']'.repeat(MAX_VALUE_DEPTH + 1)}}}}`, 'InvalidValue'],
    ['a where value nested 100 000 deep', `{"path":"db/users/select","params":{"where":{"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}}}`, 'InvalidValue'],
    ['after as an array', '{"path":"db/users/select","params":{"after":["u1"]}}', 'InvalidParams'],
    ['after as SQL text', '{"path":"db/users/select","params":{"after":"id > 0"}}', 'InvalidParams'],
    ['an empty after', '{"path":"db/users/select","params":{"after":{}}}', 'InvalidParams'],
    ['an after value nested 100 000 deep', `{"path":"db/users/select","params":{"after":{"id":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`, 'InvalidValue'],
    ['an empty select list', '{"path":"db/users/select","params":{"select":[]}}', 'InvalidParams'],
    ['update without where', '{"path":"db/users/update","params":{"data":{"name":"x"}}}', 'MissingWhere'],
    ['update with an empty where', '{"path":"db/users/update","params":{"where":{},"data":{"name":"x"}}}', 'MissingWhere'],
    ['delete without where', '{"path":"db/users/delete"}', 'MissingWhere'],
    ['delete with an empty where', '{"path":"db/users/delete","params":{"where":{}}}', 'MissingWhere'],
    ['update without data', '{"path":"db/users/update","params":{"where":{"id":"u1"}}}', 'InvalidParams'],
    ['insert without data', '{"path":"db/users/insert","params":{}}', 'InvalidParams'],
  ])('refuses %s with 400 %s', (_what, body, expected) => {
    expect(code(() => parseCallBody(body))).toBe(expected);
  });

  it('never echoes a caller name that is not an identifier', () => {
    try {
      parseCallBody(`{"path":"db/users/select","params":{"'; DROP TABLE users; --":1}}`);
    } catch (err) {
      expect((err as Error).message).not.toContain('DROP');
      return;
    }
    throw new Error('expected an error');
  });
});
