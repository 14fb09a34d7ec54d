import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules of the source tree, checked over every TypeScript file of `core/`, `cli/` and
 * `operator/` (tests included): layers point down.
 * - `core/` imports neither `cli/` nor `operator/`;
 * - `cli/` never imports `operator/` (models both use live in `core/`).
 * Imports are read by a small scanner (static, re-exports, side-effect and dynamic imports, with
 * comments and strings skipped), and relative specifiers are resolved against the importing file.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Rule {
  readonly from: string;
  readonly forbidden: readonly string[];
}

const RULES: readonly Rule[] = [
  { from: 'core', forbidden: ['cli', 'operator'] },
  { from: 'cli', forbidden: ['operator'] },
];

/** Known exceptions, each with the reason it stands: none. An entry here is a debt. */
const EXCEPTIONS: ReadonlySet<string> = new Set<string>();

/** The module specifiers a TypeScript source imports or re-exports. */
export function importSpecifiers(source: string): string[] {
  const code = blankCommentsAndStrings(source);
  const out: string[] = [];
  const patterns = [
    // import x from '…', import { a } from '…', import type …, export { a } from '…', export * from '…'
    /\b(?:import|export)\b[^;'"`()]*?\bfrom\s*(['"])/g,
    // import '…'
    /\bimport\s*(['"])/g,
    // import('…'), await import('…')
    /\bimport\s*\(\s*(['"])/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      const start = (m.index ?? 0) + m[0].length;
      const quote = m[1] ?? "'";
      const end = source.indexOf(quote, start);
      if (end > start) out.push(source.slice(start, end));
    }
  }
  return [...new Set(out)].sort();
}

/**
 * Replaces comments with spaces and the contents of string and template literals with spaces (the
 * quotes stay), so that the import patterns only see code while offsets still match the source.
 */
function blankCommentsAndStrings(source: string): string {
  const out = source.split('');
  let i = 0;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < source.length && source[j] !== c) {
        if (source[j] === '\\') j++;
        if (c !== '`' && source[j] === '\n') break;
        j++;
      }
      blank(i + 1, Math.min(j, source.length));
      i = j + 1;
    } else {
      i++;
    }
  }
  return out.join('');
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') files.push(...sourceFiles(rel));
    } else if (/\.(ts|tsx|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      files.push(rel);
    }
  }
  return files;
}

/** `dir/file.ts -> layer/…` for every import of `file` that breaks a rule. */
export function violations(file: string, source: string): string[] {
  const rule = RULES.find((r) => file.startsWith(`${r.from}/`));
  if (rule === undefined) return [];
  const found: string[] = [];
  for (const spec of importSpecifiers(source)) {
    if (!spec.startsWith('.')) continue;
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
    const layer = target.split('/')[0] ?? '';
    if (rule.forbidden.includes(layer)) found.push(`${file} -> ${target}`);
  }
  return found;
}

describe('layer rules', () => {
  it('core/ imports neither cli/ nor operator/, and cli/ never imports operator/', () => {
    const files = RULES.flatMap((r) => sourceFiles(r.from));
    expect(files.length).toBeGreaterThan(50);
    const broken = files.flatMap((f) => violations(f, readFileSync(path.join(ROOT, f), 'utf8'))).filter((v) => !EXCEPTIONS.has(v));
    expect(broken).toEqual([]);
  });

  it('every listed exception still exists (a fixed one leaves the list)', () => {
    const all = [...EXCEPTIONS].filter((e) => {
      const file = e.split(' -> ')[0] ?? '';
      try {
        return violations(file, readFileSync(path.join(ROOT, file), 'utf8')).includes(e);
      } catch {
        return false;
      }
    });
    expect(all).toEqual([...EXCEPTIONS]);
  });

  it('catches every import form, and nothing in comments or strings', () => {
    // The fixture is assembled from specifiers, so that this file (in core/) holds no line that
    // reads as an import of another layer.
    const operator = (file: string) => ['..', '..', 'operator', file].join('/');
    const cli = (file: string) => ['..', '..', 'cli', file].join('/');
    const q = (spec: string) => `'${spec}'`;
    const source = [
      `import { a } from ${q(operator('infra/plan.ts'))};`,
      `import type {\n  B,\n} from ${q(operator('types.ts'))};`,
      `export * from ${q(operator('star.ts'))};`,
      `export { c } from "${operator('named.ts')}";`,
      `import ${q(operator('side-effect.ts'))};`,
      `const m = await import(${q(operator('lazy.ts'))});`,
      `// import { no } from ${q(operator('comment.ts'))};`,
      `/* import { no } from ${q(operator('block.ts'))}; */`,
      `const s = "import { no } from ${q(operator('string.ts'))}";`,
      `const t = \`import(${q(operator('template.ts'))})\`;`,
      "import { ok } from '../../core/errors.ts';",
      "import { alsoOk } from './table.ts';",
    ].join('\n');
    expect(violations('cli/commands/example.ts', source)).toEqual(
      ['infra/plan.ts', 'lazy.ts', 'named.ts', 'side-effect.ts', 'star.ts', 'types.ts'].map((t) => `cli/commands/example.ts -> operator/${t}`),
    );
    expect(violations('core/infra/example.ts', `import { x } from ${q(cli('output.ts'))};`)).toEqual(['core/infra/example.ts -> cli/output.ts']);
    expect(violations('operator/infra/example.ts', "import { x } from '../../core/errors.ts';")).toEqual([]);
  });
});
