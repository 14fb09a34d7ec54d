import type { Command } from 'commander';
import { UsageError } from '../../core/errors.ts';
import { run, type Flags } from '../runner.ts';
import { Session } from '../session.ts';
import { isInteractive } from '../ui/terminal.ts';

/** Opens the dashboard; Ink, React and the informers load only here, once a terminal is known to be there. */
export async function openDashboard(flags: Flags): Promise<void> {
  if (!isInteractive()) {
    throw new UsageError('stk ui needs a terminal', { hint: 'for scripts use `stk release list`, `stk env list` or `stk infra status` (with --json)' });
  }
  const session = new Session(flags);
  const client = await session.client();
  const [{ renderDashboard }, { ClusterDashboardSource, clusterActions }] = await Promise.all([import('../ui/render.tsx'), import('../ui/dashboard-source.ts')]);
  const source = new ClusterDashboardSource(client);
  source.start();
  try {
    await renderDashboard({ source, actions: clusterActions(client), initialProject: session.settings.project });
  } finally {
    source.stop();
  }
}

export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description('a live dashboard of projects, environments, releases and hosts (needs a terminal; `stk` alone opens it too)')
    .option('--project <project>', 'open this project (default: context, else the project list)')
    .action(run((flags) => openDashboard(flags)));
}
