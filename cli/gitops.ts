import fs from 'node:fs';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import YAML from 'yaml';
import { projectNamespace, type Connection, type Environment, type Project, type Release } from '../core/api/resources.ts';
import { ConflictError, NotFoundError, UnavailableError, UsageError, ValidationError } from '../core/errors.ts';
import type { KubeObject } from '../core/kube/client.ts';
import { redactSecrets } from '../core/redact.ts';
import { printJson, println } from './output.ts';
import type { Flags } from './runner.ts';

/**
 * `--emit <dir>`: stk writes the manifests it would send to the cluster into a GitOps directory
 * instead, one object per file, so Argo CD or Flux can sync them. Layout (Flux applies
 * `projects/` first so the namespaces exist before a project's own directory is applied):
 *
 *   <dir>/projects/<project>.yaml
 *   <dir>/<project>/environments/<env>.yaml
 *   <dir>/<project>/connections/<env>-<name>.yaml
 *   <dir>/<project>/releases/<release-id>.yaml
 *   <dir>/<project>/releases/<release-id>-<n>.yaml   (chunk ConfigMaps of a large release)
 *
 * The same input always yields the same bytes; `--commit` commits what changed and
 * `--pull-request` does so on a new branch and opens a pull request on GitHub.
 */
export class GitOpsDir {
  readonly root: string;
  /** files this command wrote with new content, relative to the root */
  readonly changed: string[] = [];

  constructor(dir: string) {
    this.root = path.resolve(dir);
  }

  projectFile(project: string): string {
    return path.join('projects', `${project}.yaml`);
  }
  environmentFile(project: string, env: string): string {
    return path.join(project, 'environments', `${env}.yaml`);
  }
  connectionFile(project: string, objectName: string): string {
    return path.join(project, 'connections', `${objectName}.yaml`);
  }
  releaseFile(project: string, id: string): string {
    return path.join(project, 'releases', `${id}.yaml`);
  }
  /** A chunk ConfigMap of a chunked release (`<release-id>-<n>`), beside the Release's file. */
  releaseChunkFile(project: string, chunkName: string): string {
    return path.join(project, 'releases', `${chunkName}.yaml`);
  }

  read<T>(file: string): T | undefined {
    const full = path.join(this.root, file);
    if (!fs.existsSync(full)) return undefined;
    try {
      return YAML.parse(fs.readFileSync(full, 'utf8')) as T;
    } catch (err) {
      throw new ValidationError(`${full} is not valid YAML: ${(err as Error).message}`);
    }
  }

  /** Every object of a kind under a folder of the project (e.g. its connections). */
  readAll<T>(folder: string): T[] {
    const full = path.join(this.root, folder);
    if (!fs.existsSync(full)) return [];
    return fs
      .readdirSync(full)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => this.read<T>(path.join(folder, f)))
      .filter((o): o is T => o !== undefined);
  }

  /** The namespace of a project as the directory declares it (the default when it does not). */
  namespaceOf(project: string): string {
    const obj = this.read<Project & KubeObject>(this.projectFile(project));
    if (!obj) throw new NotFoundError(`project ${project} is not in ${this.root}`, { hint: `write it first: stk project create ${project} --emit ${this.root}` });
    return projectNamespace(obj);
  }

  environment(project: string, env: string): Environment & KubeObject {
    const obj = this.read<Environment & KubeObject>(this.environmentFile(project, env));
    if (!obj) throw new NotFoundError(`environment ${env} of project ${project} is not in ${this.root}`, { hint: `write it first: stk env create --project ${project} ${env} --emit ${this.root}` });
    return obj;
  }

  connections(project: string, env: string): Array<Connection & KubeObject> {
    return this.readAll<Connection & KubeObject>(path.join(project, 'connections')).filter((c) => c.spec?.environment === env);
  }

  release(project: string, id: string): (Release & KubeObject) | undefined {
    return this.read<Release & KubeObject>(this.releaseFile(project, id));
  }

  /** Commits (or opens a pull request for) what this command wrote, as the flags ask. */
  publish(flags: Flags, message: { title: string; body: string; branch: string }): Promise<Published> {
    return publish(this, flags, message);
  }

  /** Prints what was written, committed and opened, then the key=value lines. */
  report(flags: Flags, published: Published, extra: Record<string, string> = {}): void {
    reportEmitted(flags, published, extra);
  }

  /** Writes one object; a file whose bytes would not change is left alone (and not reported). */
  write(file: string, obj: KubeObject): void {
    const full = path.join(this.root, file);
    const text = toYaml(obj);
    if (fs.existsSync(full) && fs.readFileSync(full, 'utf8') === text) return;
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, text);
    this.changed.push(file);
  }
}

/** Byte-stable YAML of one object: no line folding, keys in the order the manifest builders give. */
function toYaml(obj: unknown): string {
  return YAML.stringify(obj, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false });
}

export interface Published {
  files: string[];
  commit?: string;
  branch?: string;
  pullRequest?: { number: number; url: string };
}

/**
 * After the files are written: commit them (`--commit`), or commit them on a new branch, push it
 * and open a pull request (`--pull-request`). Only the files this command wrote are committed.
 */
async function publish(dir: GitOpsDir, flags: Flags, message: { title: string; body: string; branch: string }): Promise<Published> {
  const files = [...dir.changed].sort();
  const out: Published = { files };
  if (!flags.commit && !flags.pullRequest) return out;
  if (files.length === 0) return out;
  const git = simpleGit({ baseDir: dir.root });
  let top: string;
  try {
    top = (await git.revparse(['--show-toplevel'])).trim();
  } catch {
    throw new ValidationError(`${dir.root} is not inside a Git repository`, [], { hint: 'run `git init` there, or drop --commit' });
  }
  const paths = files.map((f) => path.relative(top, path.join(dir.root, f)));
  const repo = simpleGit({ baseDir: top });

  if (!flags.pullRequest) {
    await repo.add(paths);
    const done = await repo.commit(`${message.title}\n\n${message.body}`, paths);
    out.commit = await fullSha(repo, done.commit);
    return out;
  }

  const github = gitHubTarget(await repo.remote(['get-url', String(flags.remote ?? 'origin')]).then((u) => (u ?? '').trim()).catch(() => ''));
  const base = (await repo.revparse(['--abbrev-ref', 'HEAD'])).trim();
  if (base === 'HEAD') throw new UsageError('--pull-request needs a branch checked out (HEAD is detached)');
  const branch = message.branch;
  await repo.checkoutLocalBranch(branch);
  try {
    await repo.add(paths);
    const done = await repo.commit(`${message.title}\n\n${message.body}`, paths);
    out.commit = await fullSha(repo, done.commit);
    out.branch = branch;
    try {
      await repo.push(String(flags.remote ?? 'origin'), branch, ['--set-upstream']);
    } catch (err) {
      throw new UnavailableError(`could not push ${branch} to ${String(flags.remote ?? 'origin')}: ${firstLine(err)}`, { reason: 'GitPushFailed' });
    }
  } finally {
    await repo.checkout(base);
  }
  out.pullRequest = await openPullRequest(github, { head: branch, base, title: message.title, body: message.body });
  return out;
}

async function fullSha(repo: ReturnType<typeof simpleGit>, short: string): Promise<string> {
  return (await repo.revparse([short || 'HEAD'])).trim();
}

interface GitHubTarget {
  owner: string;
  repo: string;
  token: string;
  baseUrl: string;
}

/** Where the pull request goes: GITHUB_REPOSITORY (owner/name), else a github.com remote URL. */
function gitHubTarget(remoteUrl: string, env: NodeJS.ProcessEnv = process.env): GitHubTarget {
  const token = env.GITHUB_TOKEN ?? env.GH_TOKEN;
  if (!token) throw new UsageError('--pull-request needs a GitHub token in GITHUB_TOKEN');
  const named = env.GITHUB_REPOSITORY ?? /github\.com[:/]([^/]+\/[^/]+?)(?:\.git)?$/.exec(remoteUrl)?.[1];
  const [owner, repo, ...rest] = (named ?? '').split('/');
  if (!owner || !repo || rest.length > 0) {
    throw new UsageError('cannot tell which GitHub repository gets the pull request', { hint: 'set GITHUB_REPOSITORY=<owner>/<name>, or use a github.com remote' });
  }
  return { owner, repo, token, baseUrl: (env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/$/, '') };
}

async function openPullRequest(target: GitHubTarget, pr: { head: string; base: string; title: string; body: string }): Promise<{ number: number; url: string }> {
  const { Octokit } = await import('@octokit/rest');
  const octokit = new Octokit({ auth: target.token, baseUrl: target.baseUrl, log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } });
  try {
    const { data } = await octokit.rest.pulls.create({ owner: target.owner, repo: target.repo, ...pr });
    return { number: data.number, url: data.html_url };
  } catch (err) {
    const status = (err as { status?: number }).status;
    const detail = `GitHub answered ${status ?? 'nothing'} for ${target.owner}/${target.repo}`;
    if (status === 401 || status === 403) throw new UnavailableError(`the pull request was not opened: ${detail} (is GITHUB_TOKEN valid and allowed to open pull requests?); the branch ${pr.head} was pushed`, { reason: 'GitHubUnauthorized' });
    if (status === 422) throw new ConflictError(`the pull request was not opened: ${detail} (does one exist for ${pr.head} already?); the branch ${pr.head} was pushed`, { reason: 'PullRequestRejected' });
    throw new UnavailableError(`the pull request was not opened: ${detail}; the branch ${pr.head} was pushed`, { reason: 'GitHubUnavailable' });
  }
}

function firstLine(err: unknown): string {
  // A remote URL may carry credentials (https://user:token@host/…): never echo them.
  return redactSecrets(String((err as Error).message ?? err).split('\n').find((l) => l.trim()) ?? 'unknown error');
}

/** What an emitting command prints: the files written, the commit and pull request, then key=value lines. */
function reportEmitted(flags: Flags, published: Published, extra: Record<string, string> = {}): void {
  if (flags.json) return printJson({ ...extra, ...published });
  for (const f of published.files) println(`wrote ${f}`);
  if (published.files.length === 0) println('nothing changed: the directory already holds these manifests');
  if (published.commit) println(`commit=${published.commit}`);
  if (published.pullRequest) println(`pullRequest=${published.pullRequest.url}`);
  for (const [k, v] of Object.entries(extra)) println(`${k}=${v}`);
}
