#!/usr/bin/env node
// Bundles `stk` (cli/main.ts) with esbuild into dist/cli/main.js, the package's `bin.stk`, plus
// the chunks it imports on demand (dist/cli/bundle/): one file per command module and one for
// Ink and React, so a run loads only what its command needs (see cli/start.ts). Runs after
// `tsc -p tsconfig.build.json` in `npm run build`, replacing tsc's dist/cli/main.js.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { build } from 'esbuild';

/**
 * Node built-in modules, loaded when first used rather than when the bundle starts.
 * - An ES import of a built-in (`import http from 'node:http'`) makes Node fill in every export
 *   of the module, running its lazy getters (node:http's WebSocket and EventSource load undici,
 *   ≈ 50 ms; node:util's parseArgs, diff, worker_threads … 36 internal modules), and esbuild's
 *   interop helper for a require()d module reads every property's descriptor, which does the same.
 *   So the built-ins stay external in the bundle and, once it is written, each chunk's ES imports
 *   of them are rewritten into plain reads of `process.getBuiltinModule` (see
 *   `rewriteBuiltinImports`): no namespace object is ever made.
 * - A default or namespace import of a built-in whose export is a plain object gets a stand-in
 *   that loads the module on its first property read. Commander imports node:child_process (28
 *   internal modules) only to spawn external subcommands, which stk has none of: `stk env list`
 *   never loads it. Named imports read their properties at once; modules whose export is a
 *   function or class (events, stream, assert, module) are taken as they are; process is the
 *   global object.
 */
const builtins = new Set(builtinModules.flatMap((m) => (m.startsWith('node:') ? [m] : [m, `node:${m}`])));
const requireAtBuild = createRequire(import.meta.url);
const builtinsExternal = {
  name: 'builtins-external',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_0-9/]+$/ }, (args) => (builtins.has(args.path) ? { path: args.path, external: true } : undefined));
  },
};

/** The statement that stands for one ES import of a built-in (same number of lines). */
function builtinBinding(clause, specifier) {
  const id = specifier.startsWith('node:') ? specifier : `node:${specifier}`;
  const exported = requireAtBuild(id);
  const lazy = typeof exported === 'object' && exported !== null;
  const eager = `globalThis.process.getBuiltinModule(${JSON.stringify(id)})`;
  const statements = [];
  const m = /^(?:([\w$]+)\s*,?\s*)?(?:\*\s*as\s+([\w$]+)|\{([^}]*)\})?$/.exec(clause.trim());
  if (!m) throw new Error(`build-cli: cannot rewrite import ${clause} from ${specifier}`);
  const [, def, namespace, named] = m;
  // The stand-in has the module's property names (read here), each a getter: it enumerates,
  // spreads and reads like the module itself, which it loads on the first read.
  const keys = lazy ? JSON.stringify(Object.getOwnPropertyNames(exported).filter((k) => k !== '__esModule')) : '';
  for (const name of [def, namespace].filter(Boolean)) statements.push(`const ${name} = ${lazy ? `__stkLazyBuiltin(${JSON.stringify(id)}, ${keys})` : eager};`);
  if (named !== undefined && named.trim() !== '') {
    const parts = named.split(',').map((p) => p.trim()).filter(Boolean).map((p) => p.replace(/^([\w$]+)\s+as\s+([\w$]+)$/, '$1: $2'));
    statements.push(`const { ${parts.join(', ')} } = ${eager};`);
  }
  return statements.join(' ');
}

/** `process` imported from node:process: the global object, under the name the chunk uses. */
function processBinding(clause) {
  const m = /^(?:([\w$]+)\s*,?\s*)?(?:\*\s*as\s+([\w$]+)|\{([^}]*)\})?$/.exec(clause.trim());
  if (!m) throw new Error(`build-cli: cannot rewrite import ${clause} from node:process`);
  const statements = [m[1], m[2]].filter(Boolean).map((name) => `const ${name} = globalThis.process;`);
  if (m[3]?.trim()) statements.push(`const { ${m[3].split(',').map((p) => p.trim()).filter(Boolean).map((p) => p.replace(/^([\w$]+)\s+as\s+([\w$]+)$/, '$1: $2')).join(', ')} } = globalThis.process;`);
  return statements.join(' ');
}

const IMPORT = /^import\s+([^;'"]*?)\s+from\s+"([^"]+)";$/;
/**
 * Rewrites one output chunk's ES imports of built-ins (esbuild writes each module's imports,
 * one statement per line or a few lines, at the start of that module's code in the chunk).
 */
function rewriteBuiltinImports(text) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('import ') || !/ from "[^"]+";$|^import \{$/.test(lines[i])) {
      out.push(lines[i]);
      continue;
    }
    let end = i;
    while (end < lines.length - 1 && !/ from "[^"]+";$/.test(lines[end])) end++;
    const statement = lines.slice(i, end + 1).join(' ').replace(/\s+/g, ' ');
    const m = IMPORT.exec(statement);
    if (m && builtins.has(m[2])) {
      out.push(m[2] === 'node:process' || m[2] === 'process' ? processBinding(m[1]) : builtinBinding(m[1], m[2]), ...Array(end - i).fill(''));
    } else out.push(...lines.slice(i, end + 1));
    i = end;
  }
  return out.join('\n');
}

const root = path.resolve(import.meta.dirname, '..');

/**
 * The CLI's config validator, compiled now instead of on every run of `stk` (compiling it was
 * most of the time a command spent before its first request): ajv's standalone code for
 * configSchema(cliConfigSpec), with the options core/config.ts compiles with, replaces
 * cli/precompiled-config.ts in the bundle. Read from tsc's output (dist/), built just before.
 */
const { configSchema, ajvOptions } = await import(path.join(root, 'dist/core/config.js'));
const { cliConfigSpec } = await import(path.join(root, 'dist/cli/session.js'));
const cliSchema = configSchema(cliConfigSpec);
const ajv = new Ajv({ ...ajvOptions, code: { source: true, esm: true } });
const validatorCode = standaloneCode(ajv, ajv.compile(cliSchema));
const precompiledConfig = {
  name: 'precompiled-config',
  setup(b) {
    b.onLoad({ filter: /[\\/]cli[\\/]precompiled-config\.ts$/ }, () => ({
      contents: `import validate from 'stk:cli-config-validator';\nexport const precompiledValidators = { ${JSON.stringify(JSON.stringify(cliSchema))}: validate };\n`,
      loader: 'js',
      resolveDir: root,
    }));
    b.onResolve({ filter: /^stk:cli-config-validator$/ }, () => ({ path: 'cli-config-validator', namespace: 'precompiled-config' }));
    b.onLoad({ filter: /.*/, namespace: 'precompiled-config' }, () => ({ contents: validatorCode, loader: 'js', resolveDir: root }));
  },
};
const outdir = path.join(root, 'dist/cli');
rmSync(path.join(outdir, 'bundle'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'cli/main.ts' },
  outdir,
  chunkNames: 'bundle/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  // Ink's optional React DevTools hook, loaded only under DEV=true; not a dependency.
  external: ['react-devtools-core'],
  plugins: [builtinsExternal, precompiledConfig],
  // Bundled CommonJS packages call require() for Node's built-in modules: a require made on first
  // use (createRequire costs a URL parse per chunk). The stand-in of rewriteBuiltinImports.
  banner: {
    js: [
      'let __stkRequire; const require = (id) => (__stkRequire ??= globalThis.process.getBuiltinModule("node:module").createRequire(import.meta.url))(id);',
      'const __stkLazyBuiltin = (id, keys) => { let m; const o = {}; for (const k of keys) Object.defineProperty(o, k, { get: () => (m ??= globalThis.process.getBuiltinModule(id))[k], enumerable: true }); return o; };',
    ].join('\n'),
  },
});
for (const file of ['main.js', ...readdirSync(path.join(outdir, 'bundle')).filter((f) => f.endsWith('.js')).map((f) => `bundle/${f}`)]) {
  const full = path.join(outdir, file);
  const text = readFileSync(full, 'utf8');
  const rewritten = rewriteBuiltinImports(text);
  if (rewritten !== text) writeFileSync(full, rewritten);
}
