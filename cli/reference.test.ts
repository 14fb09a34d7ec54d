import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram, exitCodes } from './program.ts';
import { regenerateCommand, renderCliReference } from './reference.ts';

const page = path.resolve(import.meta.dirname, '../docs/cli-reference.md');

describe('docs/cli-reference.md', () => {
  it('is exactly what the commander definitions render', () => {
    // Given the page in the repository and the reference rendered from the program as built now
    const committed = readFileSync(page, 'utf8');
    const rendered = renderCliReference(buildProgram(), exitCodes);
    // Then they are the same text: a changed command, option or default must regenerate the page
    expect(committed, `docs/cli-reference.md is out of date: run \`${regenerateCommand}\``).toBe(rendered);
  });

  it('documents every command, its options and defaults, and the exit codes', () => {
    const rendered = renderCliReference(buildProgram(), exitCodes);
    expect(rendered).toContain('### `stk release promote`');
    expect(rendered).toContain('- `--timeout <seconds>`: how long to wait for the operator (default `120`)');
    expect(rendered).toContain('- `--ref <ref>`: Git ref');
    expect(rendered).toMatch(/--ref <ref>`: .*\(required\)/);
    expect(rendered).toContain('| 10 | partial success (some hosts failed) |');
    expect(rendered).not.toMatch(/`stk help`/);
  });
});
