#!/usr/bin/env node
// Bundles `stk` (cli/main.ts) with esbuild into dist/cli/main.js, the package's `bin.stk`, plus
// the chunks it imports on demand (dist/cli/bundle/): one file per command module and one for
// Ink and React, so a run loads only what its command needs (see cli/start.ts). Runs after
// `tsc -p tsconfig.build.json` in `npm run build`, replacing tsc's dist/cli/main.js.
import { rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { build } from 'esbuild';

/**
 * Node built-in modules, loaded when first used rather than when the bundle starts.
 * - `import http from 'node:http'` in an ES module makes Node fill in every export of the module,
 *   running its lazy getters (node:http's WebSocket and EventSource load undici, ≈ 50 ms), and
 *   so does esbuild's interop helper, which reads every property's descriptor (node:util's:
 *   parseArgs, diff, worker_threads … 36 internal modules). So every bundled import of a
 *   built-in module becomes a require, never an ES import.
 * - A built-in whose exports are a plain object is represented by an object of getters with the
 *   same property names (read from Node at build time): the module is required on the first
 *   property read. Commander imports node:child_process (28 internal modules) but only spawns
 *   for external subcommands, which stk has none of; `stk env list` never loads it.
 * Modules whose export is a function or class (events, stream, assert, module) and process (an
 * event emitter used as itself) are required as they are.
 */
const builtins = new Set(builtinModules.flatMap((m) => (m.startsWith('node:') ? [m] : [m, `node:${m}`])));
const requireAtBuild = createRequire(import.meta.url);
function builtinShim(name) {
  const exported = requireAtBuild(`node:${name}`);
  if (name === 'process' || typeof exported !== 'object' || exported === null) return `module.exports = require('node:${name}');`;
  const keys = Object.getOwnPropertyNames(exported).filter((k) => k !== '__esModule');
  return [
    'let loaded;',
    `const load = () => (loaded ??= require('node:${name}'));`,
    'const shim = {};',
    `for (const key of ${JSON.stringify(keys)}) Object.defineProperty(shim, key, { get: () => load()[key], enumerable: true });`,
    'module.exports = shim;',
  ].join('\n');
}
const builtinsAsRequire = {
  name: 'builtins-as-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_0-9/]+$/ }, (args) => {
      if (!builtins.has(args.path)) return undefined;
      return args.namespace === 'builtin-require' ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ''), namespace: 'builtin-require' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({ contents: builtinShim(args.path), loader: 'js' }));
  },
};

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
  // Bundled CommonJS packages call require() for Node's built-in modules.
  plugins: [builtinsAsRequire, precompiledConfig],
  // process.getBuiltinModule, not an ES import of node:module (whose namespace loads the source-map support).
  banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
});
