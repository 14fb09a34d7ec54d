#!/usr/bin/env node
// Prints each test file's duration from a vitest JSON report, slowest first, then every failed
// test with the start of its error, then the run's closing totals in vitest's words (so the cause
// of a failure and the totals stay in the last lines of a CI log, which may be all a reader sees).
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
const failures = report.testResults.flatMap((r) => [
  ...(r.status === 'failed' && !(r.assertionResults ?? []).some((a) => a.status === 'failed') ? [{ file: r.name, title: '(the file itself)', messages: [r.message ?? ''] }] : []),
  ...(r.assertionResults ?? []).filter((a) => a.status === 'failed').map((a) => ({ file: r.name, title: a.fullName ?? a.title, messages: a.failureMessages ?? [] })),
]);
if (failures.length > 0) {
  // ANSI colours and the stack below the first frames add nothing to a log read as text.
  const plain = (text) => text.replace(/\u001b\[[0-9;]*m/g, '');
  console.log(`\nFailed tests (${failures.length}):`);
  for (const f of failures) {
    console.log(`\n  ${path.relative(root, f.file)} > ${f.title}`);
    const lines = plain(f.messages.join('\n')).split('\n');
    const shown = lines.slice(0, 30);
    for (const line of shown) console.log(`    ${line.slice(0, 400)}`);
    if (lines.length > shown.length) console.log(`    … ${lines.length - shown.length} more lines in the vitest output above`);
  }
}
const files = { passed: rows.filter((r) => r.status === 'passed').length, failed: rows.filter((r) => r.status === 'failed').length };
console.log(
  `\n Test Files  ${files.failed ? `${files.failed} failed | ` : ''}${files.passed} passed (${rows.length})\n      Tests  ${report.numFailedTests ? `${report.numFailedTests} failed | ` : ''}${report.numPassedTests} passed${report.numPendingTests ? ` | ${report.numPendingTests} skipped` : ''} (${report.numTotalTests})`,
);
