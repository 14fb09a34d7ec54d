import type { Command } from 'commander';
import { reportError } from './output.ts';
import type { GlobalFlags } from './session.ts';

export type Flags = GlobalFlags & Record<string, unknown>;
export type Action = (flags: Flags, args: string[]) => Promise<number | void>;

/**
 * Adapts a command body to commander: merges global flags, turns a thrown error into its exit
 * code (DESIGN §5) with a message on stderr, and never lets an exception escape.
 */
export function run(fn: Action): (...actionArgs: unknown[]) => Promise<void> {
  return async (...actionArgs: unknown[]) => {
    const command = actionArgs[actionArgs.length - 1] as Command;
    const flags = command.optsWithGlobals<Flags>();
    const args = actionArgs.slice(0, -2).filter((a): a is string => typeof a === 'string');
    try {
      process.exitCode = (await fn(flags, args)) ?? 0;
    } catch (err) {
      process.exitCode = reportError(err, Boolean(flags.json));
    }
  };
}
