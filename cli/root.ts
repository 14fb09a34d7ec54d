import { Command, Option } from 'commander';
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
 * The `stk` root command: global options, exit codes in the help, usage errors exit 1. Commands
 * are added by cli/program.ts (all of them) or cli/start.ts (only the one being run).
 */
export function rootCommand(): Command {
  return new Command('stk')
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
}
