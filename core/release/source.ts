import { simpleGit } from 'simple-git';
import { NotFoundError, ValidationError } from '../errors.ts';

/** The repo files of one commit that a release is built from. */
export interface RepoSnapshot {
  /** the full commit SHA the ref resolved to */
  commit: string;
  /** `schema/*.yaml` (sorted by path) */
  schemaFiles: Array<{ path: string; text: string }>;
  /** `config/permissions.yaml`, if the commit has it */
  permissions: { path: string; text: string } | undefined;
}

/**
 * Reads `schema/*.yaml` and `config/permissions.yaml` from the tree of a ref, never from the
 * working tree: what is released is exactly what was committed.
 */
export async function readRepoAtRef(repoPath: string, ref: string): Promise<RepoSnapshot> {
  const git = simpleGit({ baseDir: repoPath });
  if (!(await git.checkIsRepo().catch(() => false))) throw new ValidationError(`${repoPath} is not a Git repository`, [], { hint: 'pass --repo <path to your repository>' });
  if (ref.startsWith('-')) throw new ValidationError(`invalid ref "${ref}"`);
  let commit: string;
  try {
    commit = (await git.revparse(['--verify', '--end-of-options', `${ref}^{commit}`])).trim();
  } catch {
    throw new NotFoundError(`ref ${ref} does not name a commit in ${repoPath}`, { hint: 'pass a commit SHA, branch or tag that exists (git log --oneline)' });
  }
  const listing = await git.raw(['ls-tree', '-r', '--name-only', commit, '--', 'schema', 'config/permissions.yaml']);
  const paths = listing.split('\n').filter(Boolean).sort();
  const show = (path: string) => git.show([`${commit}:${path}`]);
  const schemaFiles = await Promise.all(
    paths.filter((p) => /^schema\/[^/]+\.ya?ml$/.test(p)).map(async (path) => ({ path, text: await show(path) })),
  );
  const permissions = paths.includes('config/permissions.yaml') ? { path: 'config/permissions.yaml', text: await show('config/permissions.yaml') } : undefined;
  return { commit, schemaFiles, permissions };
}
