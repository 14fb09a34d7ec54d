import { Command, Option } from 'commander';
import { registerApiKeyCommands } from './commands/apikey.ts';
import { registerAuthCommands } from './commands/auth.ts';
import { registerConnectionCommands } from './commands/connections.ts';
import { registerContextCommands } from './commands/context.ts';
import { registerInfraCommands } from './commands/infra.ts';
import { registerEnvCommands, registerProjectCommands } from './commands/project.ts';
import { registerReleaseCommands } from './commands/release.ts';
import { registerSchemaCommands } from './commands/schema.ts';
import { registerUiCommand } from './commands/ui.ts';
import { version } from './version.ts';

/** The exit codes of every `stk` command (DESIGN §5): shown by `stk --help` and in docs/cli-reference.md. */
export const exitCodes: ReadonlyArray<{ code: number; meaning: string }> = [
  { code: 0, meaning: 'ok' },
  { code: 1, meaning: 'usage or invalid input' },
  { code: 2, meaning: 'rejected by the cluster (conflict, forbidden, not found, gate failed)' },
  { code: 3, meaning: 'a dependency failed (database, cloud API, cluster unreachable, bootstrap could not run)' },
  { code: 10, meaning: 'partial success (some hosts failed)' },
];

const exitCodesHelp = `\nExit codes:\n${exitCodes.map((e) => `  ${String(e.code).padEnd(4)}${e.meaning}`).join('\n')}`;

/**
 * `stk`: writes Santokit resources from Git refs. Building the program runs nothing and loads no
 * terminal UI (commands import Ink only where a TTY needs it), so it is cheap to import.
 */
export function buildProgram(): Command {
  const program = new Command('stk')
    .description('Santokit CLI: projects, environments, connections and releases from Git refs')
    .version(version, '-v, --version')
    .option('--kubeconfig <file>', 'kubeconfig file [env KUBECONFIG]')
    .option('--context <kube-context>', 'kubeconfig context')
    .addOption(new Option('--json', 'machine-readable output'))
    .showHelpAfterError()
    .addHelpText('after', exitCodesHelp)
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
