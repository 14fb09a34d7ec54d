#!/usr/bin/env node
// Writes docs/cli-reference.md from the built CLI (dist/cli/program.js): `npm run build` first.
// `--check` changes nothing and exits 1 when the page is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const page = path.join(root, 'docs/cli-reference.md');
const { buildProgram, exitCodes } = await import(path.join(root, 'dist/cli/program.js'));
const { renderCliReference } = await import(path.join(root, 'dist/cli/reference.js'));

const rendered = renderCliReference(buildProgram(), exitCodes);
let current = '';
try {
  current = readFileSync(page, 'utf8');
} catch {
  // first run: no page yet
}
if (process.argv.includes('--check')) {
  if (current !== rendered) {
    console.error('docs/cli-reference.md is out of date: run `npm run build && npm run docs:cli`');
    process.exit(1);
  }
  console.log('docs/cli-reference.md is up to date');
} else if (current === rendered) {
  console.log('docs/cli-reference.md is up to date');
} else {
  writeFileSync(page, rendered);
  console.log('wrote docs/cli-reference.md');
}
