import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { simpleGit } from 'simple-git';
import { NotFoundError, UnavailableError, ValidationError } from '../errors.ts';

const execFileAsync = promisify(execFile);

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
  // `-l`: each blob's size, to check what is read against it.
  const listing = await git.raw(['ls-tree', '-r', '-l', commit, '--', 'schema', 'config/permissions.yaml']);
  const sizes = new Map<string, number>();
  for (const line of listing.split('\n').filter(Boolean)) {
    const m = /^\S+ blob \S+\s+(\d+)\t(.+)$/.exec(line);
    if (m) sizes.set(m[2]!, Number(m[1]));
  }
  const paths = [...sizes.keys()].sort();
  const show = (path: string) => showBlob(repoPath, commit, path, sizes.get(path)!);
  const schemaFiles = await Promise.all(
    paths.filter((p) => /^schema\/[^/]+\.ya?ml$/.test(p)).map(async (path) => ({ path, text: await show(path) })),
  );
  const permissions = paths.includes('config/permissions.yaml') ? { path: 'config/permissions.yaml', text: await show('config/permissions.yaml') } : undefined;
  return { commit, schemaFiles, permissions };
}

/**
 * One file of a commit, read with `git show` directly and checked against the blob's size:
 * simple-git's show can hand back truncated output when several run at once (steveukx/git-js
 * issue 795), which made a large schema fail to parse now and then.
 */
async function showBlob(repoPath: string, commit: string, path: string, size: number): Promise<string> {
  const { stdout } = await execFileAsync('git', ['-C', repoPath, 'show', `${commit}:${path}`], { encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024 });
  if (stdout.length !== size) {
    throw new UnavailableError(`reading ${path} of commit ${commit.slice(0, 12)} returned ${stdout.length} of its ${size} bytes`, { reason: 'GitReadFailed', hint: 'run the command again' });
  }
  return stdout.toString('utf8');
}

/** One file of one commit, read from the tree of a ref (never the working tree). */
export interface FileAtRef {
  /** the full commit SHA the ref resolved to */
  commit: string;
  /** the file's text, or undefined when the commit has no such file */
  text: string | undefined;
}

/**
 * Reads `path` from the tree of `ref` in the repository at `repoPath`. The same rules as
 * readRepoAtRef: what is read is exactly what was committed.
 */
export async function readFileAtRef(repoPath: string, ref: string, path: string): Promise<FileAtRef> {
  const git = simpleGit({ baseDir: repoPath });
  if (!(await git.checkIsRepo().catch(() => false))) throw new ValidationError(`${repoPath} is not a Git repository`, [], { hint: 'pass --repo <path to your repository>' });
  if (ref.startsWith('-')) throw new ValidationError(`invalid ref "${ref}"`);
  if (path.startsWith('-') || path.startsWith('/') || path.split('/').includes('..')) throw new ValidationError(`invalid repository path "${path}"`);
  let commit: string;
  try {
    commit = (await git.revparse(['--verify', '--end-of-options', `${ref}^{commit}`])).trim();
  } catch {
    throw new NotFoundError(`ref ${ref} does not name a commit in ${repoPath}`, { hint: 'pass a commit SHA, branch or tag that exists (git log --oneline)' });
  }
  const listing = await git.raw(['ls-tree', '--name-only', commit, '--', path]);
  if (!listing.split('\n').includes(path)) return { commit, text: undefined };
  return { commit, text: await git.show([`${commit}:${path}`]) };
}

/** The root of the Git work tree that contains `dir`, or undefined when `dir` is not in one. */
export async function gitRootOf(dir: string): Promise<string | undefined> {
  try {
    const root = (await simpleGit({ baseDir: dir }).revparse(['--show-toplevel'])).trim();
    return root === '' ? undefined : root;
  } catch {
    return undefined;
  }
}
