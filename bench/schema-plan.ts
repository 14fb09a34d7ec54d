/**
 * Schema engine benchmark: introspection + plan at growing sizes, and the initial apply.
 *
 *   SANTOKIT_PG_ADMIN_URL=postgres://postgres@127.0.0.1:55432/postgres npx node bench/schema-plan.ts [sizes…]
 *
 * Sizes default to `100 1000`; pass e.g. `100 1000 10000`. Each size gets its own throwaway
 * database. Every table has 20 columns (the id and 19 more of every type), two indexes and a
 * foreign key to the previous table. Figures are printed, never asserted.
 */
import { performance } from 'node:perf_hooks';
import {
  applyPlan,
  declareSchema,
  introspectSchema,
  managedTablesOf,
  parseSchemaFiles,
  planLiveSchemaChanges,
  planSchemaChanges,
  type SchemaIR,
} from '../core/schema/index.ts';
import { createTestDatabase } from '../tests/support/postgres.ts';

const COLUMN_TYPES = ['string', 'int', 'bigint', 'float', '"decimal(12,2)"', 'boolean', 'json', 'timestamp', 'bytes', 'string'];

function schemaYaml(tables: number, extraColumn = false): string {
  const lines = ['version: 1', 'tables:'];
  for (let t = 0; t < tables; t++) {
    const name = `t${String(t).padStart(5, '0')}`;
    lines.push(`  ${name}:`, '    columns:');
    for (let c = 1; c <= 18; c++) {
      const type = COLUMN_TYPES[c % COLUMN_TYPES.length] as string;
      const extra = c === 1 ? ', nullable: false, unique: true' : c === 2 ? ', nullable: false, default: 0' : '';
      lines.push(`      c${String(c).padStart(2, '0')}: { type: ${type}${extra} }`);
    }
    const ref = t === 0 ? '' : `, references: { table: t${String(t - 1).padStart(5, '0')}, onDelete: cascade }`;
    lines.push(`      prev_id: { type: string${ref} }`);
    if (extraColumn) lines.push('      added: { type: string }');
    lines.push('    indexes:', '      - { columns: [c02] }', '      - { columns: [c08, c10] }');
  }
  return `${lines.join('\n')}\n`;
}

function declare(text: string): SchemaIR {
  return declareSchema(parseSchemaFiles([{ path: 'schema/bench.yaml', text }])).main as SchemaIR;
}

interface Timed<T> {
  readonly value: T;
  readonly ms: number;
  /** process peak RSS so far, MiB */
  readonly peakMiB: number;
  /** heap used after, MiB */
  readonly heapMiB: number;
}

async function timed<T>(run: () => Promise<T> | T): Promise<Timed<T>> {
  const start = performance.now();
  const value = await run();
  const ms = performance.now() - start;
  return { value, ms, peakMiB: process.resourceUsage().maxRSS / 1024, heapMiB: process.memoryUsage().heapUsed / 1024 / 1024 };
}

const fmt = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);

async function benchSize(tables: number): Promise<void> {
  const declared = (await timed(() => declare(schemaYaml(tables)))) as Timed<SchemaIR>;
  const next = declare(schemaYaml(tables, true));
  const managed = managedTablesOf(declared.value);
  const db = await createTestDatabase(`bench_${tables}`);
  try {
    const emptyIntrospect = await timed(() => introspectSchema(db.sql, { managedTables: managed }));
    const initialPlan = await timed(() => planSchemaChanges({ declared: declared.value, live: emptyIntrospect.value }));
    let applied: Timed<unknown> | undefined;
    let applyError: string | undefined;
    try {
      applied = await timed(() => applyPlan(db.sql, initialPlan.value, { releaseId: 'bench', lockTimeoutMs: 60_000, statementTimeoutMs: 3_600_000 }));
    } catch (err) {
      applyError = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
    console.log(`\n== ${tables} tables × 20 columns, 2 indexes + 1 foreign key each ==`);
    console.log(`parse + declare YAML (${(schemaYaml(tables).length / 1024).toFixed(0)} KiB): ${fmt(declared.ms)}`);
    console.log(`introspect empty db + plan:   ${fmt(emptyIntrospect.ms + initialPlan.ms)} (${emptyIntrospect.value.queries} queries), ${initialPlan.value.steps.length} steps`);
    if (applied) console.log(`apply initial create:         ${fmt(applied.ms)} (one transaction, ${initialPlan.value.steps.length} statements)`);
    else {
      console.log(`apply initial create:         FAILED: ${applyError}`);
      return;
    }
    // Steady state: the database matches; this is the cost every reconcile pays. Best of 5, since a
    // shared machine adds noise; the median is printed too.
    const runs: { introspect: number; plan: number; queries: number; steps: number }[] = [];
    let live: Timed<Awaited<ReturnType<typeof introspectSchema>>> | undefined;
    for (let i = 0; i < 5; i++) {
      live = await timed(() => introspectSchema(db.sql, { managedTables: managed }));
      const liveValue = live.value;
      const steady = await timed(() => planSchemaChanges({ declared: declared.value, live: liveValue, previous: declared.value }));
      runs.push({ introspect: live.ms, plan: steady.ms, queries: live.value.queries, steps: steady.value.steps.length });
    }
    if (live === undefined) return;
    const total = runs.map((r) => r.introspect + r.plan).sort((a, b) => a - b);
    const best = runs.reduce((a, b) => (a.introspect + a.plan <= b.introspect + b.plan ? a : b));
    console.log(`introspect ${tables} tables:        ${fmt(best.introspect)} (${best.queries} queries, constant)`);
    console.log(`plan, no changes:             ${fmt(best.plan)} → ${best.steps} steps`);
    console.log(`introspect + plan:            best ${fmt(total[0] ?? 0)}, median ${fmt(total[2] ?? 0)} of 5`);
    const whole = await timed(() => planLiveSchemaChanges(db.sql, { declared: declared.value, previous: declared.value }));
    console.log(`planLiveSchemaChanges:        ${fmt(whole.ms)} → ${whole.value.steps.length} steps (introspect + row probe if needed + plan)`);
    const liveValue = live.value;
    const changed = await timed(() => planSchemaChanges({ declared: next, live: liveValue, previous: declared.value }));
    console.log(`plan, one new column a table: ${fmt(changed.ms)} → ${changed.value.steps.length} steps`);
    console.log(`memory: peak RSS ${changed.peakMiB.toFixed(0)} MiB, heap after ${changed.heapMiB.toFixed(0)} MiB`);
  } finally {
    await db.drop();
  }
}

const sizes = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n > 0);
for (const size of sizes.length > 0 ? sizes : [100, 1000]) await benchSize(size);
