import type { Command } from 'commander';
import { UsageError } from '../core/errors.ts';
import type { GitOpsDir } from './gitops.ts';
import type { Flags } from './runner.ts';

/*
 * The `--emit` options, kept apart from the GitOps directory code so that commands can declare
 * them without loading YAML and Git at start-up (`stk --help` stays light).
 */

/** The flags every command that can emit takes. */
export function addEmitOptions(command: Command): Command {
  return command
    .option('--emit <dir>', 'write the manifests into this GitOps directory instead of the cluster (for Argo CD or Flux to sync)')
    .option('--commit', 'with --emit: commit the written files in the Git repository that holds the directory')
    .option('--pull-request', 'with --emit: commit on a new branch, push it and open a GitHub pull request (GITHUB_TOKEN; GITHUB_REPOSITORY or the remote URL names the repository; GITHUB_API_URL for GitHub Enterprise)')
    .option('--remote <name>', 'with --pull-request: the remote to push to', 'origin');
}

/** The GitOps directory of `--emit`, or undefined; `--commit`/`--pull-request` without it is a usage error. */
export async function emitTarget(flags: Flags): Promise<GitOpsDir | undefined> {
  if (flags.emit === undefined) {
    if (flags.commit || flags.pullRequest) throw new UsageError('--commit and --pull-request go with --emit <dir>');
    return undefined;
  }
  const { GitOpsDir } = await import('./gitops.ts');
  return new GitOpsDir(String(flags.emit));
}
