import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readContext, writeContext } from './context-file.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the context file', () => {
  it('is replaced whole: a reader in another process never sees half of a write', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stk-context-'));
    dirs.push(dir);
    fs.mkdirSync(path.join(dir, '.stk'));
    writeContext({ project: 'first' }, dir);
    // Another process writes the context over and over (what `stk context set` in a second
    // terminal does) while this one reads it.
    const writes = 3_000;
    const module = new URL('./context-file.ts', import.meta.url).href;
    const writer = spawn(process.execPath, [
      '--experimental-strip-types',
      '--input-type=module',
      '-e',
      `const { writeContext } = await import(${JSON.stringify(module)});
       for (let i = 0; i < ${writes}; i++) writeContext({ project: 'p' + i, env: 'e'.repeat(i % 64), connection: 'main' }, ${JSON.stringify(dir)});`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    writer.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => writer.on('close', resolve));
    let running = true;
    void done.then(() => (running = false));
    const torn: string[] = [];
    let reads = 0;
    while (running) {
      for (let i = 0; i < 200; i++, reads++) {
        try {
          readContext(dir);
        } catch (err) {
          torn.push((err as Error).message);
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(await done, stderr).toBe(0);
    expect(reads).toBeGreaterThan(0);
    expect(torn.slice(0, 3)).toEqual([]);
    expect(readContext(dir)).toEqual({ project: `p${writes - 1}`, env: 'e'.repeat((writes - 1) % 64), connection: 'main' });
    // Nothing left beside it.
    expect(fs.readdirSync(path.join(dir, '.stk'))).toEqual(['context.json']);
  });
});
