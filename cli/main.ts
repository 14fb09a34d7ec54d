#!/usr/bin/env node
import { buildProgram } from './program.ts';
import { isInteractive } from './ui/terminal.ts';

// `stk` alone opens the dashboard on a terminal; elsewhere commander prints the help.
const argv = process.argv.length === 2 && isInteractive() ? [...process.argv, 'ui'] : process.argv;
await buildProgram().parseAsync(argv);
