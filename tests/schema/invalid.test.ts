import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ValidationError } from '../../core/errors.ts';
import { parseSchemaFiles } from '../../core/schema/index.ts';

/**
 * The corpus of broken schema files (tests/schema/invalid/*.yaml). The first line of each says what
 * the one error must be: `# expect: <line>:<column> <part of the message>`.
 */

const dir = new URL('./invalid/', import.meta.url);
const corpus = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((file) => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    const m = /^# expect: (\d+):(\d+) (.+)$/m.exec(text);
    if (!m) throw new Error(`${file} has no "# expect: line:col message" header`);
    return { file, text, line: Number(m[1]), column: Number(m[2]), message: m[3] as string };
  });

function errorOf(run: () => unknown): ValidationError {
  try {
    run();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw new Error(`expected a ValidationError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a ValidationError, but the input was accepted');
}

const example = readFileSync(new URL('../../config/schema/posts.yaml', import.meta.url), 'utf8');
const users = readFileSync(new URL('../../config/schema/users.yaml', import.meta.url), 'utf8');

describe('invalid schema files', () => {
  test('the corpus has at least 20 files', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(20);
  });

  test.each(corpus)('$file gives one clear, located error', ({ file, text, line, column, message }) => {
    const path = `schema/${file}`;
    const err = errorOf(() => parseSchemaFiles([{ path, text }]));
    expect(err.fieldErrors).toHaveLength(1);
    const [only] = err.fieldErrors;
    expect(only?.message).toContain(message);
    expect({ path: only?.path, line: only?.line, column: only?.column }).toEqual({ path, line, column });
    expect(err.message).toContain(`${path}:${line}:${column}: `);
    expect(err.exitCode).toBe(1);
  });

  test('a table declared in two files is reported at the second, naming the first', () => {
    const err = errorOf(() =>
      parseSchemaFiles([
        { path: 'schema/b.yaml', text: 'version: 1\ntables:\n  users:\n    columns: {}\n' },
        { path: 'schema/a.yaml', text: 'version: 1\ntables:\n  teams: {}\n  users:\n    columns: {}\n' },
      ]),
    );
    expect(err.fieldErrors).toEqual([
      { path: 'schema/b.yaml', line: 3, column: 3, message: 'tables.users: table "users" is already declared in schema/a.yaml:4:3; table names are unique across all files' },
    ]);
  });

  test('problems in several files are all reported together, in file and line order', () => {
    const err = errorOf(() =>
      parseSchemaFiles([
        { path: 'schema/z.yaml', text: 'version: 1\ntables:\n  a:\n    columns:\n      x: { type: nope }\n' },
        { path: 'schema/y.yaml', text: 'version: 1\ntables:\n  b:\n    colums: {}\n  c:\n    id: { generate: serial }\n' },
      ]),
    );
    expect(err.fieldErrors.map((e) => `${e.path}:${e.line}:${e.column}`)).toEqual(['schema/y.yaml:4:5', 'schema/y.yaml:6:21', 'schema/z.yaml:5:18']);
  });

  test('never crashes: every truncation and many byte mutations of a valid file either parse or give a ValidationError', () => {
    // deterministic pseudo-random mutations (LCG), so a failure reproduces
    let seed = 42;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const inputs: string[] = [];
    for (let i = 0; i <= example.length; i += 7) inputs.push(example.slice(0, i));
    const alphabet = ['', ' ', '\t', ':', '-', '{', '}', '[', ']', '"', "'", '&a', '*a', '!', '#', '\n', '?', '|', '>', '%', '@', '`', ',', '\u0000', '\uFFFD'];
    for (let i = 0; i < 400; i++) {
      const at = next(example.length);
      inputs.push(example.slice(0, at) + (alphabet[next(alphabet.length)] ?? '') + example.slice(at + next(3)));
    }
    for (const text of inputs) {
      try {
        parseSchemaFiles([
          { path: 'schema/users.yaml', text: users },
          { path: 'schema/posts.yaml', text },
        ]);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw new Error(`crashed on input ${JSON.stringify(text)}`, { cause: err });
        expect(err.fieldErrors.length).toBeGreaterThan(0);
        for (const fe of err.fieldErrors) {
          expect(fe.line).toBeGreaterThanOrEqual(1);
          expect(fe.column).toBeGreaterThanOrEqual(1);
        }
      }
    }
  });
});
