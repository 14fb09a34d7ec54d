import { describe, expect, it } from 'vitest';
import { declareSchema } from './declare.ts';
import { onlineSchedule, lockRefusal, estimateLocks, renderMode } from './online.ts';
import { parseSchemaFiles } from './parse.ts';
import { planSchemaChanges } from './plan.ts';
import { schemaOf, type SchemaIR } from './ir.ts';

const declare = (text: string): SchemaIR => declareSchema(parseSchemaFiles([{ path: 'schema/app.yaml', text }])).main ?? schemaOf([]);
const live = (ir: SchemaIR) => ({ ir, unmanagedTables: [], tablesWithRows: null, queries: 0 });

const users = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string }
`;
const orders = `  orders:
    id: { generate: ulid }
    columns:
      user_id: { type: string, nullable: false, references: { table: users } }
`;

describe('online schedule', () => {
  it('builds indexes concurrently outside the transaction, attaches unique keys to them, adds keys NOT VALID then validates', () => {
    const before = declare(`${users}${orders}`.replace('nullable: false, references', 'references'));
    const after = declare(`${users.replace('email: { type: string }', 'email: { type: string, nullable: false, unique: true }')}    indexes:\n      - columns: [email]\n${orders}`);
    const plan = planSchemaChanges({ declared: after, live: live(before), previous: before });
    const units = onlineSchedule(plan).map((u) => [u.outside, u.sql]);
    expect(units).toEqual([
      [false, 'ALTER TABLE "public"."orders" ADD CONSTRAINT "orders_user_id_not_null" CHECK ("user_id" IS NOT NULL) NOT VALID'],
      [true, 'ALTER TABLE "public"."orders" VALIDATE CONSTRAINT "orders_user_id_not_null"'],
      [false, 'ALTER TABLE "public"."orders" ALTER COLUMN "user_id" SET NOT NULL, DROP CONSTRAINT "orders_user_id_not_null"'],
      [false, 'ALTER TABLE "public"."users" ADD CONSTRAINT "users_email_not_null" CHECK ("email" IS NOT NULL) NOT VALID'],
      [true, 'ALTER TABLE "public"."users" VALIDATE CONSTRAINT "users_email_not_null"'],
      [false, 'ALTER TABLE "public"."users" ALTER COLUMN "email" SET NOT NULL, DROP CONSTRAINT "users_email_not_null"'],
      [true, 'CREATE UNIQUE INDEX CONCURRENTLY "users_email_key" ON "public"."users" ("email")'],
      [false, 'ALTER TABLE "public"."users" ADD CONSTRAINT "users_email_key" UNIQUE USING INDEX "users_email_key"'],
      [true, 'CREATE INDEX CONCURRENTLY "users_email_idx" ON "public"."users" ("email")'],
    ]);
    const text = renderMode(plan, 'online');
    expect(text).toMatch(/^mode: online — 9 statement\(s\), 4 outside any transaction/);
    expect(text).toContain('locks: SHARE UPDATE EXCLUSIVE on users while the index builds: reads and writes continue');
  });

  it('a foreign key to an existing table is added NOT VALID and validated; a new table needs no rewrite', () => {
    const before = declare(users);
    const after = declare(`${users}${orders}`);
    const plan = planSchemaChanges({ declared: after, live: live(before), previous: before });
    const units = onlineSchedule(plan);
    expect(units.map((u) => u.sql.split('\n')[0])).toEqual([
      'CREATE TABLE "public"."orders" (',
      'ALTER TABLE "public"."orders" ADD CONSTRAINT "orders_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "public"."users" ("id") NOT VALID',
      'ALTER TABLE "public"."orders" VALIDATE CONSTRAINT "orders_user_id_fkey"',
    ]);
    expect(units.map((u) => u.outside)).toEqual([false, false, true]);
    expect(renderMode(plan, 'transactional')).toMatch(/^mode: transactional — every step in one transaction; each lock is held until it commits; about \d+ locks/);
  });
});

describe('lock estimate', () => {
  const many = (n: number) => declare(`version: 1\ntables:\n${Array.from({ length: n }, (_, i) => `  t${i}:\n    id: { generate: ulid }\n    columns:\n      v: { type: string }\n`).join('')}`);
  const defaults = { maxLocksPerTransaction: 64, maxConnections: 100, maxPreparedTransactions: 0, slots: 6_400 };

  it('refuses a first apply of 1,500 tables on a default server, naming the setting, the number needed and the way out', () => {
    const plan = planSchemaChanges({ declared: many(1_500), live: live(schemaOf([])) });
    expect(estimateLocks(plan)).toBeGreaterThan(6_400);
    const refusal = lockRefusal(plan, defaults);
    expect(refusal?.reason).toBe('InsufficientLocks');
    expect(refusal?.message).toContain(`needs about ${estimateLocks(plan)} locks`);
    expect(refusal?.message).toContain('max_locks_per_transaction 64');
    expect(refusal?.hint).toMatch(/online mode .*smaller releases.*max_locks_per_transaction to at least \d+/);
  });

  it('lets a plan through that fits', () => {
    const plan = planSchemaChanges({ declared: many(100), live: live(schemaOf([])) });
    expect(lockRefusal(plan, defaults)).toBeUndefined();
  });
});
