#!/usr/bin/env node
import module from 'node:module';

// Node keeps the compiled code of this bundle on disk (os.tmpdir()/node-compile-cache): later
// runs of `stk` skip parsing and compiling it. Enabled before the CLI's code is imported.
module.enableCompileCache?.();
const [{ runStk }, { isInteractive }] = await Promise.all([import('./start.ts'), import('./ui/terminal.ts')]);
// `stk` alone opens the dashboard on a terminal; elsewhere commander prints the help.
await runStk(process.argv.length === 2 && isInteractive() ? [...process.argv, 'ui'] : process.argv);
