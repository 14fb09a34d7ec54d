/**
 * Write stalls during an index build: a steady writer inserts one row at a time into a table of
 * N rows while one index is added to it, (a) in transactional mode (one transaction: the build
 * blocks writes until it commits) and (b) in online mode (CREATE INDEX CONCURRENTLY). Prints, per
 * mode, the apply time, the writes done meanwhile and the writer's insert latency during the apply
 * (p50, p99, max): the longest stall. Target: online p99 under 100 ms.
 *
 *   SANTOKIT_PG_ADMIN_URL=postgres://postgres@127.0.0.1:55432/postgres node_modules/.bin/node bench/online-index.ts [rows]
 *
 * rows defaults to 1000000. Each mode gets its own throwaway database. Figures are printed, never asserted.
 */
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { applyPlan, applyPlanOnline, declareSchema, parseSchemaFiles, planLiveSchemaChanges, type SchemaIR } from '../core/schema/index.ts';
import { createTestDatabase } from '../tests/support/postgres.ts';

const rows = Number(process.argv[2] ?? 1_000_000);
const base = `version: 1
tables:
  items:
    id: { generate: auto_increment }
    columns:
      n: { type: int }
      label: { type: string }
`;
const indexed = `${base}    indexes:
      - columns: [n, label]
`;
const declare = (text: string): SchemaIR => declareSchema(parseSchemaFiles([{ path: 'schema/bench.yaml', text }])).main!;

const percentile = (sorted: number[], p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

async function measure(mode: 'transactional' | 'online') {
  const db = await createTestDatabase(`bench_online_${mode}`);
  try {
    await applyPlan(db.sql, await planLiveSchemaChanges(db.sql, { declared: declare(base), connection: 'main' }), { releaseId: 'rel-bench000000000001' });
    await db.sql.unsafe(`INSERT INTO items (n, label) SELECT g % 100000, md5(g::text) FROM generate_series(1, ${rows}) g`);
    await db.sql.unsafe('VACUUM ANALYZE items');
    const plan = await planLiveSchemaChanges(db.sql, { declared: declare(indexed), previous: declare(base), connection: 'main' });

    const writer = postgres(db.url, { max: 1, onnotice: () => {} });
    const samples: Array<{ start: number; ms: number }> = [];
    let running = true;
    const loop = (async () => {
      let i = 0;
      while (running) {
        const start = performance.now();
        await writer`INSERT INTO items (n, label) VALUES (${i++}, 'w')`;
        samples.push({ start, ms: performance.now() - start });
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    if (mode === 'online') await applyPlanOnline(db.sql, plan, { releaseId: 'rel-bench000000000002', statementTimeoutMs: 3_600_000 });
    else await applyPlan(db.sql, plan, { releaseId: 'rel-bench000000000002', statementTimeoutMs: 3_600_000 });
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await loop;
    await writer.end();

    // every insert that was in flight at any moment of the apply
    const during = samples.filter((s) => s.start + s.ms >= t0 && s.start <= t1).map((s) => s.ms).sort((a, b) => a - b);
    return { applyMs: t1 - t0, writes: during.length, p50: percentile(during, 50), p99: percentile(during, 99), max: during.at(-1) ?? 0 };
  } finally {
    await db.drop();
  }
}

console.log(`index on (n, label) of a ${rows.toLocaleString('en')}-row table, one steady writer`);
console.log('mode           apply ms   writes during   insert p50 ms   p99 ms   max (longest stall) ms');
for (const mode of ['transactional', 'online'] as const) {
  const r = await measure(mode);
  console.log(`${mode.padEnd(14)} ${r.applyMs.toFixed(0).padStart(8)}   ${String(r.writes).padStart(13)}   ${r.p50.toFixed(1).padStart(13)}   ${r.p99.toFixed(1).padStart(6)}   ${r.max.toFixed(1).padStart(6)}`);
}
