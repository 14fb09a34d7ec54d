/**
 * Soak run of the schema oracle (tests/schema/oracle/): many generated pairs v1 → v2 through the
 * engine, each checked like the CI test does, without stopping at the first failure. Prints
 * pairs/s, outcome counts and failures per class with the first example of each. Figures are
 * printed, never asserted.
 *
 *   SANTOKIT_PG_ADMIN_URL=… npx node bench/schema-soak.ts [pairs]      (default 2000)
 *
 * STK_ORACLE_SEED (default: random, printed), STK_ORACLE_SWITCHES (as in the test, default:
 * the CI set; `all` to include the classes still off in CI). Pair i of a seed is run i of the
 * test with the same seed: replay it with STK_ORACLE_SEED=<seed> STK_ORACLE_PATH=<i> to shrink it.
 */
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { OracleStats } from '../tests/schema/oracle/classify.ts';
import { oracleConfig, switchesText } from '../tests/schema/oracle/config.ts';
import { buildPair, pairRecipe } from '../tests/schema/oracle/generator.ts';
import { describePair, DUMP_BATCH, stageMillis, openOracleDatabases, OracleFailure, runPair, type DumpMismatch } from '../tests/schema/oracle/harness.ts';

const pairs = Number(process.argv[2] ?? 2000);
const config = oracleConfig({ ...process.env, STK_ORACLE_SEED: process.env.STK_ORACLE_SEED ?? String(Math.floor(Math.random() * 2 ** 31)) }, pairs);
const showExamples = process.env.STK_ORACLE_EXAMPLES !== '0';

console.log(`schema oracle soak: ${pairs} pairs, seed ${config.seed}, switches: ${switchesText(config.switches)}`);
const dbs = await openOracleDatabases(process.env.STK_ORACLE_DUMP === 'each' ? 'each' : 'batch');
const examples = new Map<string, string>();
const flush = async (): Promise<void> => {
  const started = performance.now();
  const mismatches: DumpMismatch[] = await dbs.flushDumps();
  dumpSeconds += (performance.now() - started) / 1000;
  for (const m of mismatches) stats.recordFailure(new OracleFailure('oracle', `pg_dump (batched): ${m.diff}`), `${m.label}\n${m.diff}\n${examples.get(m.label) ?? ''}`);
  examples.clear();
};
let dumpSeconds = 0;
const stats = new OracleStats();
const started = performance.now();
try {
  const arbitrary = pairRecipe(config.switches);
  // generated in batches: the same values, in the same order, as fc.assert's runs with this seed
  const recipes = fc.sample(arbitrary, { numRuns: pairs, seed: config.seed });
  for (const [i, recipe] of recipes.entries()) {
    const pair = buildPair(recipe, config.switches);
    stats.recordEdits(pair.applied);
    try {
      const label = `pair ${i} (STK_ORACLE_SEED=${config.seed} STK_ORACLE_PATH=${i})`;
      examples.set(label, describePair(pair));
      const outcome = await runPair(pair, dbs, label);
      if (dbs.kept.size >= DUMP_BATCH) await flush();
      if (outcome.kind === 'refused') stats.refused++;
      else {
        stats.applied++;
        stats.steps += outcome.steps;
        if (outcome.steps === 0) stats.noop++;
      }
    } catch (err) {
      stats.recordFailure(err, `pair ${i} (STK_ORACLE_SEED=${config.seed} STK_ORACLE_PATH=${i})\n${(err as Error).message}\n${describePair(pair)}`);
    }
    if ((i + 1) % 100 === 0) console.log(`  ${i + 1} pairs, ${((i + 1) / ((performance.now() - started) / 1000)).toFixed(1)} pairs/s, ${stats.failed} failed`);
  }
  await flush();
} finally {
  await dbs.close();
}
const seconds = (performance.now() - started) / 1000;
console.log(`\n${pairs} pairs in ${seconds.toFixed(1)} s: ${(pairs / seconds).toFixed(2)} pairs/s (batched pg_dumps: ${dumpSeconds.toFixed(1)} s)`);
console.log(stats.summary());
console.log(`per pair: ${[...stageMillis].map(([k, ms]) => `${k} ${(ms / pairs).toFixed(0)} ms`).join(', ')}`);
if (showExamples) {
  for (const [cls, { first }] of stats.failures) console.log(`\n=== ${cls}\n${first}`);
}
