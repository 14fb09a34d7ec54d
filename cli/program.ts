import type { Command } from 'commander';
import { registerApiKeyCommands } from './commands/apikey.ts';
import { registerAuthCommands } from './commands/auth.ts';
import { registerConnectionCommands } from './commands/connections.ts';
import { registerContextCommands } from './commands/context.ts';
import { registerInfraCommands } from './commands/infra.ts';
import { registerEnvCommands, registerProjectCommands } from './commands/project.ts';
import { registerReleaseCommands } from './commands/release.ts';
import { registerSchemaCommands } from './commands/schema.ts';
import { registerUiCommand } from './commands/ui.ts';
import { rootCommand } from './root.ts';

export { exitCodes } from './root.ts';

/** Every command module's register function, in the order `stk --help` lists them. */
export const registerAll: ReadonlyArray<(program: Command) => void> = [
  registerContextCommands,
  registerAuthCommands,
  registerProjectCommands,
  registerEnvCommands,
  registerConnectionCommands,
  registerReleaseCommands,
  registerSchemaCommands,
  registerApiKeyCommands,
  registerInfraCommands,
  registerUiCommand,
];

/**
 * The whole `stk` program, every command defined: what docs/cli-reference.md is rendered from.
 * The `stk` executable does not use it: cli/start.ts loads only the module of the command run.
 */
export function buildProgram(): Command {
  const program = rootCommand();
  for (const register of registerAll) register(program);
  return program;
}
