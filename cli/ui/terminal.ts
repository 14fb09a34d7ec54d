import { UsageError } from '../../core/errors.ts';

/**
 * Where stk may draw: the Ink UI only when both ends are a terminal (a person is there to read
 * and answer). Everything here is free of React and Ink so that `stk --help` stays light.
 */
export function isInteractive(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(process.stdout.isTTY && process.stdin.isTTY) && env.TERM !== 'dumb' && !env.CI;
}

/** Colour unless `NO_COLOR` is set (https://no-color.org) or `FORCE_COLOR=0`. */
export function colorEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return !(env.NO_COLOR !== undefined && env.NO_COLOR !== '') && env.FORCE_COLOR !== '0';
}

/** The error for a question that needs a terminal: it names the flag that answers it instead. */
export function promptWithoutTerminal(question: string, flag: string): UsageError {
  return new UsageError(`${question}, and there is no terminal to ask`, { hint: `pass ${flag} to answer it without a terminal` });
}
