import fs from 'node:fs';
import type { Command } from 'commander';
import { clearContext, contextPath, readContext, writeContext, type StkContext } from '../context-file.ts';
import { printJson, println } from '../output.ts';
import { cliConfigSpec, Session } from '../session.ts';
import { run } from '../runner.ts';
import { loadConfig } from '../../core/config.ts';
import { UsageError, ValidationError } from '../../core/errors.ts';
import { kubeconfigContexts, kubeconfigSource } from '../../core/kube/kubeconfig.ts';

/**
 * `--hub` names where the control plane is. Here that is a Kubernetes API server, reached
 * through a kubeconfig context: a context name is taken as is, a URL (https://host:port) picks
 * the context whose cluster has that server (the current context if several do).
 */
export function kubeContextForHub(hub: string, kubeconfig: string | undefined): string {
  const { files } = kubeconfigSource(kubeconfig ? { kubeconfig } : {});
  const contexts = files.flatMap((f) => kubeconfigContexts(f));
  const hint = 'pass --hub <kubeconfig context> or --hub <API server URL of a context>; `kubectl config get-contexts` lists them';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(hub)) {
    if (contexts.length > 0 && !contexts.some((c) => c.name === hub)) throw new ValidationError(`no kubeconfig context is named "${hub}"`, [], { hint });
    return hub;
  }
  let wanted: URL;
  try {
    wanted = new URL(hub);
  } catch {
    throw new ValidationError(`--hub ${hub} is not a valid URL`, [], { hint });
  }
  const same = (server: string | undefined) => {
    if (!server) return false;
    try {
      const u = new URL(server);
      return u.protocol === wanted.protocol && u.host === wanted.host && u.pathname.replace(/\/+$/, '') === wanted.pathname.replace(/\/+$/, '');
    } catch {
      return false;
    }
  };
  const matching = contexts.filter((c) => same(c.server)).map((c) => c.name);
  if (matching.length === 0) {
    throw new ValidationError(`no kubeconfig context points at the API server ${wanted.origin}${wanted.pathname.replace(/\/+$/, '')}`, [], {
      hint: `add one (kubectl config set-cluster/set-context) or pass --hub <context name>; ${hint}`,
    });
  }
  if (matching.length === 1) return matching[0]!;
  const current = currentContextOf(files);
  if (current && matching.includes(current)) return current;
  throw new ValidationError(`several kubeconfig contexts point at ${wanted.origin}: ${matching.join(', ')}`, [], { hint: 'pass --hub <context name> (or --context <name>) to choose one' });
}

function currentContextOf(files: string[]): string | undefined {
  for (const f of files) {
    try {
      const m = /^current-context:\s*"?([^"\s]+)"?\s*$/m.exec(fs.readFileSync(f, 'utf8'));
      if (m) return m[1];
    } catch {
      /* unreadable: no current context from it */
    }
  }
  return undefined;
}

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
    .option('--hub <context-or-url>', 'where the control plane is: the Kubernetes API server, as a kubeconfig context name or its server URL (stored as the kubeconfig context)')
    .action(
      run(async (flags) => {
        if (typeof flags.hub === 'string') {
          const fromHub = kubeContextForHub(flags.hub, flags.kubeconfig);
          if (flags.context && flags.context !== fromHub) throw new UsageError(`--hub ${flags.hub} is kubeconfig context ${fromHub}, but --context says ${flags.context}`, { hint: 'pass only one of them' });
          flags.context = fromHub;
        }
        const given: StkContext = {
          ...(flags.project ? { project: flags.project } : {}),
          ...(flags.env ? { env: flags.env } : {}),
          ...(flags.connection ? { connection: flags.connection } : {}),
          ...(flags.context ? { kubeContext: flags.context } : {}),
        };
        if (Object.keys(given).length === 0) throw new UsageError('nothing to set', { hint: 'pass --project, --env, --connection, --hub or --context' });
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
