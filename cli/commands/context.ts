import type { Command } from 'commander';
import { clearContext, contextPath, readContext, writeContext, type StkContext } from '../context-file.ts';
import { printJson, println } from '../output.ts';
import { cliConfigSpec, Session } from '../session.ts';
import { run } from '../runner.ts';
import { loadConfig } from '../../core/config.ts';
import { UsageError } from '../../core/errors.ts';

/** `stk context set|show|clear`: defaults kept in `.stk/context.json`; flags always win. */
export function registerContextCommands(program: Command): void {
  const context = program.command('context').description('project, environment and cluster defaults for this repository (.stk/context.json)');

  context
    .command('set')
    .description('set defaults; other keys are kept')
    .option('--project <project>', 'default project')
    .option('--env <env>', 'default environment')
    .option('--connection <name>', 'default connection')
    .option('--context <kube-context>', 'kubeconfig context to use')
    .action(
      run(async (flags) => {
        const given: StkContext = {
          ...(flags.project ? { project: flags.project } : {}),
          ...(flags.env ? { env: flags.env } : {}),
          ...(flags.connection ? { connection: flags.connection } : {}),
          ...(flags.context ? { kubeContext: flags.context } : {}),
        };
        if (Object.keys(given).length === 0) throw new UsageError('nothing to set', { hint: 'pass --project, --env, --connection or --context' });
        // Validate what is being stored with the same rules as everywhere else.
        loadConfig(cliConfigSpec, { flags: { project: given.project, env: given.env, connection: given.connection, context: given.kubeContext } });
        const merged = { ...readContext(), ...given };
        const file = writeContext(merged);
        if (flags.json) printJson(merged);
        else println(`context saved to ${file}`);
      }),
    );

  context
    .command('show')
    .description('show the effective defaults (flags and environment applied)')
    .action(
      run(async (flags) => {
        const s = new Session(flags).settings;
        const shown = { project: s.project ?? null, env: s.env ?? null, connection: s.connection ?? null, kubeContext: s.kubeContext ?? null, file: contextPath() };
        if (flags.json) return printJson(shown);
        for (const [k, v] of Object.entries(shown)) println(`${k}: ${v ?? '-'}`);
      }),
    );

  context
    .command('clear')
    .description('remove .stk/context.json')
    .action(
      run(async (flags) => {
        const removed = clearContext();
        if (flags.json) printJson({ cleared: removed });
        else println(removed ? 'context cleared' : 'no context to clear');
      }),
    );
}
