#!/usr/bin/env node
import { Command, Option } from 'commander';
import { registerApiKeyCommands } from './commands/apikey.ts';
import { registerAuthCommands } from './commands/auth.ts';
import { registerConnectionCommands } from './commands/connections.ts';
import { registerContextCommands } from './commands/context.ts';
import { registerInfraCommands } from './commands/infra.ts';
import { registerEnvCommands, registerProjectCommands } from './commands/project.ts';
import { registerReleaseCommands } from './commands/release.ts';
import { registerUiCommand } from './commands/ui.ts';
import { isInteractive } from './ui/terminal.ts';
import { registerSchemaCommands } from './commands/schema.ts';
import { version } from './version.ts';

const exitCodes = `
Exit codes:
  0   ok
  1   usage or invalid input
  2   rejected by the cluster (conflict, forbidden, not found, gate failed)
  3   a dependency failed (database, cloud API, cluster unreachable, bootstrap could not run)
  10  partial success (some hosts failed)`;

/** `stk`: writes Santokit resources from Git refs. Loads the terminal UI only where a TTY needs it. */
export function buildProgram(): Command {
  const program = new Command('stk')
    .description('Santokit CLI: projects, environments, connections and releases from Git refs')
    .version(version, '-v, --version')
    .option('--kubeconfig <file>', 'kubeconfig file [env KUBECONFIG]')
    .option('--context <kube-context>', 'kubeconfig context')
    .addOption(new Option('--json', 'machine-readable output'))
    .showHelpAfterError()
    .addHelpText('after', exitCodes)
    .exitOverride((err) => {
      // Usage errors (unknown option, missing argument) exit 1; --help and --version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 1);
    });
  registerContextCommands(program);
  registerAuthCommands(program);
  registerProjectCommands(program);
  registerEnvCommands(program);
  registerConnectionCommands(program);
  registerReleaseCommands(program);
  registerSchemaCommands(program);
  registerApiKeyCommands(program);
  registerInfraCommands(program);
  registerUiCommand(program);
  return program;
}

// `stk` alone opens the dashboard on a terminal; elsewhere commander prints the help.
const argv = process.argv.length === 2 && isInteractive() ? [...process.argv, 'ui'] : process.argv;
await buildProgram().parseAsync(argv);
