#!/usr/bin/env node
import module from 'node:module';

// Node keeps the compiled code of this bundle on disk (os.tmpdir()/node-compile-cache): later
// runs of `stk` skip parsing and compiling it. Enabled before the CLI's code is imported.
module.enableCompileCache?.();
const { runStk } = await import('./start.ts');
// `stk` alone opens the dashboard on a terminal; elsewhere commander prints the help. Only then
// is the terminal check loaded.
const alone = process.argv.length === 2 && (await import('./ui/terminal.ts')).isInteractive();
await runStk(alone ? [...process.argv, 'ui'] : process.argv);
