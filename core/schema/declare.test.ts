import { describe, expect, test } from 'vitest';
import { declareSchema } from './declare.ts';
import { canonicalJson, canonicalSha256, hashSchema, physicalSchema, sha256Hex, type SchemaIR } from './ir.ts';
import { parseSchemaFiles } from './parse.ts';

function declare(text: string): Record<string, SchemaIR> {
  return declareSchema(parseSchemaFiles([{ path: 'schema/t.yaml', text }]));
}

const text = `version: 1
tables:
  users:
    id: { generate: auto_increment }
    columns:
      email: { type: string, nullable: false, unique: true }
      tags: { type: array, items: string, default: [a] }
      price: { type: "decimal(12,2)", default: 0 }
  posts:
    id: { name: post_id, generate: uuid_v7, previousNames: [id] }
    columns:
      author_id: { type: bigint, references: { table: users, as: author, onDelete: cascade } }
      created_at: { type: timestamp, nullable: false, default: now }
    indexes:
      - { columns: [author_id, created_at] }
  events:
    connection: analytics
    columns:
      name: { type: string }
`;

describe('declareSchema', () => {
  test('builds one IR per connection, tables sorted by name', () => {
    const ir = declare(text);
    expect(Object.keys(ir)).toEqual(['analytics', 'main']);
    expect(Object.keys(ir.main?.tables ?? {})).toEqual(['posts', 'users']);
  });

  test('maps types, ids, defaults, constraints and keys to the IR', () => {
    const users = declare(text).main?.tables.users;
    expect(users).toEqual({
      name: 'users',
      columns: [
        { name: 'id', type: 'bigint', nullable: false, default: null, identity: 'by_default' },
        { name: 'email', type: 'text', nullable: false, default: null, identity: null, logicalType: 'string' },
        { name: 'tags', type: 'jsonb', nullable: true, default: '\'["a"]\'::jsonb', identity: null, logicalType: 'array', items: 'string' },
        { name: 'price', type: 'numeric(12,2)', nullable: true, default: "'0'::numeric(12,2)", identity: null, logicalType: 'decimal(12,2)' },
      ],
      primaryKey: { name: 'users_pkey', columns: ['id'] },
      uniques: [{ name: 'users_email_key', columns: ['email'] }],
      indexes: [],
      foreignKeys: [],
      id: { column: 'id', generate: 'auto_increment' },
    });
    const posts = declare(text).main?.tables.posts;
    expect(posts?.columns[0]).toEqual({ name: 'post_id', type: 'text', nullable: false, default: null, identity: null, previousNames: ['id'] });
    expect(posts?.columns.find((c) => c.name === 'created_at')?.default).toBe('now()');
    expect(posts?.foreignKeys).toEqual([
      { name: 'posts_author_id_fkey', columns: ['author_id'], refTable: 'users', refColumns: ['id'], onDelete: 'cascade', onUpdate: 'no_action', as: 'author' },
    ]);
    expect(posts?.indexes).toEqual([{ name: 'posts_author_id_created_at_idx', columns: ['author_id', 'created_at'], unique: false, definition: null }]);
  });

  test('every non-auto_increment id is text without a database default', () => {
    for (const generate of ['ulid', 'uuid_v4', 'uuid_v7', 'nanoid', 'client']) {
      const ir = declare(`version: 1\ntables:\n  t:\n    id: { generate: ${generate} }\n`);
      expect(ir.main?.tables.t?.columns[0]).toEqual({ name: 'id', type: 'text', nullable: false, default: null, identity: null });
      expect(ir.main?.tables.t?.id).toEqual({ column: 'id', generate });
    }
  });

  test('the IR is plain JSON with one canonical form and a stable hash', () => {
    const ir = declare(text).main as SchemaIR;
    expect(JSON.parse(JSON.stringify(ir))).toEqual(ir);
    const reordered = declare(text.replace(/ {2}users:[\s\S]*?(?= {2}posts:)/, '') + text.match(/ {2}users:[\s\S]*?(?= {2}posts:)/)?.[0]).main as SchemaIR;
    expect(canonicalJson(reordered)).toBe(canonicalJson(ir));
    expect(hashSchema(reordered)).toBe(hashSchema(ir));
    expect(hashSchema(ir)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSchema(declare(text.replace('default: 0', 'default: 1')).main as SchemaIR)).not.toBe(hashSchema(ir));
  });

  test('physicalSchema keeps only what the database can hold', () => {
    const physical = physicalSchema(declare(text).main as SchemaIR);
    const json = JSON.stringify(physical);
    for (const key of ['logicalType', 'items', 'previousNames', '"as"', '"id":{']) expect(json).not.toContain(key);
  });
});

describe('canonicalSha256', () => {
  test('equals the SHA-256 of the canonical JSON, for schemas and for arbitrary nested data', () => {
    const ir = declare(text);
    expect(hashSchema(ir.main as SchemaIR)).toBe(sha256Hex(canonicalJson(ir.main)));
    const odd = { z: [1, undefined, { b: 'é→', a: null }], a: { y: { x: { w: [true, { v: 1.5 }] } } }, m: undefined, n: '"q"' };
    expect(canonicalSha256(odd)).toBe(sha256Hex(canonicalJson(odd)));
    expect(canonicalSha256([])).toBe(sha256Hex('[]'));
    expect(canonicalSha256(null)).toBe(sha256Hex('null'));
    const big = { tables: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`t${i}`, { name: `t${i}`, columns: Array.from({ length: 20 }, (_, j) => ({ name: `c${j}` })) }])) };
    expect(canonicalSha256(big)).toBe(sha256Hex(canonicalJson(big)));
  });
});
