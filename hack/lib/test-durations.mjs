#!/usr/bin/env node
// Prints each test file's duration from a vitest JSON report, slowest first, then the run's
// closing totals in vitest's words (so they stay the last lines of a CI log).
// Usage: node hack/lib/test-durations.mjs <vitest JSON report>… (several reports are added up)
import { readFileSync } from 'node:fs';
import path from 'node:path';

const report = { testResults: [], numFailedTests: 0, numPassedTests: 0, numPendingTests: 0, numTotalTests: 0 };
for (const file of process.argv.slice(2)) {
  let one;
  try {
    one = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`test-durations: no vitest JSON report at ${file}: ${err.code ?? err.message}`);
    continue;
  }
  report.testResults.push(...(one.testResults ?? []));
  for (const k of ['numFailedTests', 'numPassedTests', 'numPendingTests', 'numTotalTests']) report[k] += one[k] ?? 0;
}
if (report.testResults.length === 0) process.exit(0);
const root = path.resolve(import.meta.dirname, '../..');
const rows = (report.testResults ?? [])
  .map((r) => ({ name: path.relative(root, r.name), ms: Math.max(0, (r.endTime ?? 0) - (r.startTime ?? 0)), status: r.status, tests: r.assertionResults?.length ?? 0 }))
  .sort((a, b) => b.ms - a.ms);
const total = rows.reduce((s, r) => s + r.ms, 0);
const fmt = (ms) => (ms >= 60_000 ? `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s` : `${(ms / 1000).toFixed(1)}s`);
console.log(`\nTest file durations, slowest first (${rows.length} files, ${fmt(total)} in all):`);
for (const r of rows) console.log(`${fmt(r.ms).padStart(8)}  ${((100 * r.ms) / (total || 1)).toFixed(1).padStart(5)}%  ${r.status === 'passed' ? '' : `${r.status.toUpperCase()} `}${r.name} (${r.tests} tests)`);
const files = { passed: rows.filter((r) => r.status === 'passed').length, failed: rows.filter((r) => r.status === 'failed').length };
console.log(
  `\n Test Files  ${files.failed ? `${files.failed} failed | ` : ''}${files.passed} passed (${rows.length})\n      Tests  ${report.numFailedTests ? `${report.numFailedTests} failed | ` : ''}${report.numPassedTests} passed${report.numPendingTests ? ` | ${report.numPendingTests} skipped` : ''} (${report.numTotalTests})`,
);
