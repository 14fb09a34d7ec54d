import type { Command } from 'commander';
import { rootCommand } from './root.ts';

type Register = (program: Command) => void;

/**
 * Every top-level command of `stk`: its description (for `stk --help`) and the module that
 * defines it, imported only when that command runs. A process thus loads what its one command
 * needs: `stk --help` loads no command module at all, `stk env list` no Git, YAML schema or
 * sealing code. cli/program.test.ts checks this table against the full program (cli/program.ts).
 */
export const topLevelCommands: ReadonlyArray<{ name: string; description: string; load: () => Promise<Register> }> = [
  { name: 'context', description: 'project, environment and cluster defaults for this repository (.stk/context.json)', load: async () => (await import('./commands/context.ts')).registerContextCommands },
  { name: 'login', description: 'check that your kubeconfig credentials reach the cluster', load: async () => (await import('./commands/auth.ts')).registerAuthCommands },
  { name: 'whoami', description: 'show who you are and what you may do in the current project', load: async () => (await import('./commands/auth.ts')).registerAuthCommands },
  { name: 'project', description: 'projects: one per application, each with its own namespace', load: async () => (await import('./commands/project.ts')).registerProjectCommands },
  { name: 'env', description: 'environments of a project (dev, prod …)', load: async () => (await import('./commands/project.ts')).registerEnvCommands },
  { name: 'connections', description: 'database connections of an environment', load: async () => (await import('./commands/connections.ts')).registerConnectionCommands },
  { name: 'apply', description: 'validate the repo at a Git ref, snapshot it as a Release and move an environment to it (plan → gates → apply → drift → permissions → release)', load: async () => (await import('./commands/release.ts')).registerReleaseCommands },
  { name: 'release', description: 'releases: list, show, current, promote, rollback', load: async () => (await import('./commands/release.ts')).registerReleaseCommands },
  { name: 'schema', description: 'the live schema of an environment', load: async () => (await import('./commands/schema.ts')).registerSchemaCommands },
  { name: 'apikey', description: 'API keys of an environment for the data plane (POST /call)', load: async () => (await import('./commands/apikey.ts')).registerApiKeyCommands },
  { name: 'infra', description: 'cloud hosts from infra/hosts.yaml (InfraHost resources: a droplet each, bootstrapped over SSH)', load: async () => (await import('./commands/infra.ts')).registerInfraCommands },
  { name: 'ui', description: 'a live dashboard of projects, environments, releases and hosts (needs a terminal; `stk` alone opens it too)', load: async () => (await import('./commands/ui.ts')).registerUiCommand },
];

/** Global options that take a value: skipped when looking for the command name. */
const globalValueOptions = new Set(['--kubeconfig', '--context']);

/** The top-level command named on a command line (`stk [global options] <command> …`, or `stk help <command>`). */
export function commandNameOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return args[i + 1];
    if (globalValueOptions.has(arg)) {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    if (arg === 'help' && args[i + 1] !== undefined && !args[i + 1]!.startsWith('-')) return args[i + 1];
    return arg;
  }
  return undefined;
}

/**
 * Runs `stk` for argv. The command's own module defines it in full (options, subcommands, help);
 * the other top-level commands are there by name and description only, so that help, unknown
 * command errors and suggestions are the same as with every module loaded.
 */
export async function runStk(argv: readonly string[]): Promise<void> {
  const program = rootCommand();
  const name = commandNameOf(argv.slice(2));
  const entry = topLevelCommands.find((c) => c.name === name);
  if (entry) (await entry.load())(program);
  for (const c of topLevelCommands) {
    if (!program.commands.some((existing) => existing.name() === c.name)) program.command(c.name).description(c.description);
  }
  // Listed in the full program's order (one module may define several: login and whoami, apply and release).
  const order = new Map(topLevelCommands.map((c, i) => [c.name, i]));
  (program.commands as Command[]).sort((a, b) => (order.get(a.name()) ?? 0) - (order.get(b.name()) ?? 0));
  await program.parseAsync(argv as string[]);
}
