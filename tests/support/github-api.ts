import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An in-process stand-in for the GitHub REST API (v3), faithful to the published API for the
 * parts Santokit uses:
 * - `POST /repos/{owner}/{repo}/statuses/{sha}` → 201 with GitHub's commit status object; a bad
 *   `state` or a description over 140 characters → 422 `Validation Failed` with `errors`; a SHA that
 *   is not a full commit SHA → 422 `No commit found for SHA: …`,
 * - `GET /repos/{owner}/{repo}/commits/{ref}/statuses` → the statuses on a commit, newest first,
 * - `GET /repos/{owner}/{repo}` → the repository (with `default_branch`),
 * - `POST /repos/{owner}/{repo}/pulls` → 201 with the pull request (number, html_url, head, base …);
 *   a second open pull request for the same head → 422.
 * Authentication is `Authorization: token X` or `Bearer X`: no credential → 401 `Requires
 * authentication`, an unknown token → 401 `Bad credentials`, a token without access to a
 * repository (or an unknown repository) → 404 `Not Found`. Every answer carries `x-ratelimit-*`
 * headers and an `x-github-request-id`.
 *
 * Tests script faults (`fail`: a status code for the next N matching requests; 403/429 come with
 * GitHub's rate-limit body and headers) and assert on the request log, which records every
 * request with the token it carried. Ids and timestamps count up: everything is deterministic.
 */

export interface GitHubApiOptions {
  /** repositories `owner/name` that exist (default branch `main`); more with `addRepository` */
  readonly repositories?: readonly string[];
  /** tokens that authenticate, each with the repositories it may see (`*`: all) */
  readonly tokens?: Readonly<Record<string, readonly string[] | '*'>>;
  /** `x-ratelimit-limit`; default 5000 */
  readonly rateLimit?: number;
}

export interface RecordedGitHubRequest {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  /** the token from the Authorization header, if any */
  readonly auth: string | undefined;
  status: number;
}

export interface GitHubFault {
  readonly method?: string;
  /** exact path, or a RegExp tested against it */
  readonly path?: string | RegExp;
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** how many matching requests fail; default 1 */
  readonly times?: number;
}

export interface GitHubCommitStatus {
  url: string;
  avatar_url: string | null;
  id: number;
  node_id: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  description: string | null;
  target_url: string | null;
  context: string;
  created_at: string;
  updated_at: string;
  creator: GitHubUser;
}

export interface GitHubPullRequest {
  url: string;
  id: number;
  node_id: string;
  html_url: string;
  number: number;
  state: 'open';
  locked: boolean;
  title: string;
  body: string | null;
  draft: boolean;
  user: GitHubUser;
  head: { label: string; ref: string; sha: string; repo: { full_name: string } };
  base: { label: string; ref: string; sha: string; repo: { full_name: string } };
  created_at: string;
  updated_at: string;
}

interface GitHubUser {
  login: string;
  id: number;
  node_id: string;
  type: 'User';
  site_admin: boolean;
}

interface Repository {
  owner: string;
  name: string;
  id: number;
  defaultBranch: string;
  statuses: Map<string, GitHubCommitStatus[]>;
  pulls: GitHubPullRequest[];
}

export interface GitHubApi {
  /** base URL to give a client (Octokit `baseUrl`, the operator's --github-api-url) */
  readonly url: string;
  /** every request, in arrival order */
  readonly requests: readonly RecordedGitHubRequest[];
  requestsTo(method: string, path: string | RegExp): RecordedGitHubRequest[];
  clearRequests(): void;
  addRepository(fullName: string, options?: { defaultBranch?: string }): void;
  /** a token that authenticates, for the given repositories (default all) */
  addToken(token: string, repositories?: readonly string[] | '*'): void;
  /** the statuses on a commit, newest first (what GET …/commits/{ref}/statuses answers) */
  statuses(repository: string, sha: string): GitHubCommitStatus[];
  pullRequests(repository: string): GitHubPullRequest[];
  /** scripts a fault for the next matching request(s) */
  fail(fault: GitHubFault): void;
  close(): Promise<void>;
}

const DOCS = 'https://docs.github.com/rest';
const STATES = ['error', 'failure', 'pending', 'success'] as const;
const EPOCH = Date.parse('2026-01-01T00:00:00Z');
const SHA = /^[0-9a-f]{40}$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}

const notFound = (docs: string) => new HttpError(404, { message: 'Not Found', documentation_url: docs, status: '404' });
const validationFailed = (docs: string, errors: Array<Record<string, unknown>>) => new HttpError(422, { message: 'Validation Failed', errors, documentation_url: docs, status: '422' });

/** Starts the stand-in on 127.0.0.1 and a free port. */
export async function startGitHubApi(options: GitHubApiOptions = {}): Promise<GitHubApi> {
  const rateLimit = options.rateLimit ?? 5000;
  const requests: RecordedGitHubRequest[] = [];
  const faults: Array<GitHubFault & { remaining: number }> = [];
  const repositories = new Map<string, Repository>();
  const tokens = new Map<string, readonly string[] | '*'>(Object.entries(options.tokens ?? {}));
  const user: GitHubUser = { login: 'santokit-bot', id: 9000001, node_id: 'MDQ6VXNlcjkwMDAwMDE=', type: 'User', site_admin: false };
  let seq = 0;
  let nextId = 1;
  let nextRepoId = 700000001;
  let used = 0;
  const resetAt = Math.floor(Date.now() / 1000) + 3600;
  let baseUrl = '';

  const clock = (n: number): string => new Date(EPOCH + n * 1000).toISOString().replace('.000Z', 'Z');
  const addRepository = (fullName: string, opts: { defaultBranch?: string } = {}) => {
    const [owner, name] = fullName.split('/') as [string, string];
    repositories.set(fullName.toLowerCase(), { owner, name, id: nextRepoId++, defaultBranch: opts.defaultBranch ?? 'main', statuses: new Map(), pulls: [] });
  };
  for (const r of options.repositories ?? []) addRepository(r);

  function rateHeaders(): Record<string, string> {
    return {
      'x-ratelimit-limit': String(rateLimit),
      'x-ratelimit-remaining': String(Math.max(0, rateLimit - used)),
      'x-ratelimit-reset': String(resetAt),
      'x-ratelimit-used': String(used),
      'x-ratelimit-resource': 'core',
    };
  }

  function tokenOf(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization;
    if (!header) return undefined;
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(header.trim());
    return m?.[1] ?? header;
  }

  /** The repository a request names, if the token may see it; GitHub answers 404 either way. */
  function repository(owner: string, name: string, token: string, docs: string): Repository {
    const repo = repositories.get(`${owner}/${name}`.toLowerCase());
    const allowed = tokens.get(token);
    if (!repo || allowed === undefined || (allowed !== '*' && !allowed.some((r) => r.toLowerCase() === `${owner}/${name}`.toLowerCase()))) throw notFound(docs);
    return repo;
  }

  function repositoryJson(repo: Repository): Record<string, unknown> {
    const full = `${repo.owner}/${repo.name}`;
    return {
      id: repo.id,
      node_id: Buffer.from(`010:Repository${repo.id}`).toString('base64'),
      name: repo.name,
      full_name: full,
      private: true,
      owner: { login: repo.owner, id: repo.id + 1, node_id: 'MDEyOk9yZ2FuaXphdGlvbjE=', type: 'Organization', site_admin: false },
      html_url: `https://github.com/${full}`,
      description: null,
      fork: false,
      url: `${baseUrl}/repos/${full}`,
      default_branch: repo.defaultBranch,
      visibility: 'private',
      permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
      created_at: clock(0),
      updated_at: clock(0),
      pushed_at: clock(0),
    };
  }

  function createStatus(repo: Repository, sha: string, body: Record<string, unknown>): GitHubCommitStatus {
    const docs = `${DOCS}/commits/statuses#create-a-commit-status`;
    const state = body.state;
    if (typeof state !== 'string' || !(STATES as readonly string[]).includes(state)) {
      throw validationFailed(docs, [{ resource: 'Status', code: 'custom', field: 'state', message: 'state is not included in the list' }]);
    }
    const description = typeof body.description === 'string' ? body.description : null;
    if (description !== null && description.length > 140) {
      throw validationFailed(docs, [{ resource: 'Status', code: 'custom', field: 'description', message: 'description is too long (maximum is 140 characters)' }]);
    }
    if (!SHA.test(sha)) throw new HttpError(422, { message: `No commit found for SHA: ${sha}`, documentation_url: docs, status: '422' });
    const id = nextId++;
    const status: GitHubCommitStatus = {
      url: `${baseUrl}/repos/${repo.owner}/${repo.name}/statuses/${sha}`,
      avatar_url: null,
      id,
      node_id: Buffer.from(`011:StatusContext${id}`).toString('base64'),
      state: state as GitHubCommitStatus['state'],
      description,
      target_url: typeof body.target_url === 'string' ? body.target_url : null,
      context: typeof body.context === 'string' && body.context !== '' ? body.context : 'default',
      created_at: clock(id),
      updated_at: clock(id),
      creator: user,
    };
    const list = repo.statuses.get(sha) ?? [];
    list.unshift(status);
    repo.statuses.set(sha, list);
    return status;
  }

  function createPull(repo: Repository, body: Record<string, unknown>): GitHubPullRequest {
    const docs = `${DOCS}/pulls/pulls#create-a-pull-request`;
    const missing = ['title', 'head', 'base'].filter((f) => typeof body[f] !== 'string' || body[f] === '');
    if (missing.length > 0) throw validationFailed(docs, missing.map((field) => ({ resource: 'PullRequest', code: 'missing_field', field })));
    const head = String(body.head);
    const base = String(body.base);
    const headRef = head.includes(':') ? head.slice(head.indexOf(':') + 1) : head;
    if (headRef === base) throw validationFailed(docs, [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${headRef}` }]);
    if (repo.pulls.some((p) => p.head.ref === headRef && p.state === 'open')) {
      throw validationFailed(docs, [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${repo.owner}:${headRef}.` }]);
    }
    const id = nextId++;
    const number = repo.pulls.length + 1;
    const full = `${repo.owner}/${repo.name}`;
    const pull: GitHubPullRequest = {
      url: `${baseUrl}/repos/${full}/pulls/${number}`,
      id,
      node_id: Buffer.from(`004:PullRequest${id}`).toString('base64'),
      html_url: `https://github.com/${full}/pull/${number}`,
      number,
      state: 'open',
      locked: false,
      title: String(body.title),
      body: typeof body.body === 'string' ? body.body : null,
      draft: body.draft === true,
      user,
      head: { label: `${repo.owner}:${headRef}`, ref: headRef, sha: '0'.repeat(40), repo: { full_name: full } },
      base: { label: `${repo.owner}:${base}`, ref: base, sha: '0'.repeat(40), repo: { full_name: full } },
      created_at: clock(id),
      updated_at: clock(id),
    };
    repo.pulls.push(pull);
    return pull;
  }

  function route(method: string, path: string, body: unknown, token: string | undefined): { status: number; body: unknown } {
    const statusesPath = /^\/repos\/([^/]+)\/([^/]+)\/statuses\/([^/]+)$/.exec(path);
    const listPath = /^\/repos\/([^/]+)\/([^/]+)\/commits\/([^/]+)\/statuses$/.exec(path);
    const pullsPath = /^\/repos\/([^/]+)\/([^/]+)\/pulls$/.exec(path);
    const repoPath = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path);
    const known = (statusesPath && method === 'POST') || (listPath && method === 'GET') || (pullsPath && method === 'POST') || (repoPath && method === 'GET');
    if (!known) throw notFound(DOCS);
    if (token === undefined) throw new HttpError(401, { message: 'Requires authentication', documentation_url: DOCS, status: '401' });
    if (!tokens.has(token)) throw new HttpError(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
    const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (statusesPath) {
      const repo = repository(statusesPath[1]!, statusesPath[2]!, token, `${DOCS}/commits/statuses#create-a-commit-status`);
      return { status: 201, body: createStatus(repo, statusesPath[3]!, input) };
    }
    if (listPath) {
      const repo = repository(listPath[1]!, listPath[2]!, token, `${DOCS}/commits/statuses#list-commit-statuses-for-a-reference`);
      return { status: 200, body: repo.statuses.get(listPath[3]!) ?? [] };
    }
    if (pullsPath) {
      const repo = repository(pullsPath[1]!, pullsPath[2]!, token, `${DOCS}/pulls/pulls#create-a-pull-request`);
      return { status: 201, body: createPull(repo, input) };
    }
    const repo = repository(repoPath![1]!, repoPath![2]!, token, `${DOCS}/repos/repos#get-a-repository`);
    return { status: 200, body: repositoryJson(repo) };
  }

  function faultFor(method: string, path: string): (GitHubFault & { remaining: number }) | undefined {
    const i = faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || (typeof f.path === 'string' ? f.path === path : f.path.test(path))));
    if (i < 0) return undefined;
    const f = faults[i]!;
    if (--f.remaining <= 0) faults.splice(i, 1);
    return f;
  }

  function faultAnswer(f: GitHubFault): { status: number; body: unknown; headers: Record<string, string> } {
    const rateLimited = f.status === 429 || f.status === 403;
    const headers: Record<string, string> = rateLimited ? { 'x-ratelimit-remaining': '0', 'retry-after': '1' } : {};
    const body =
      f.body ??
      (rateLimited
        ? { message: `API rate limit exceeded for user ID ${user.id}.`, documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api`, status: String(f.status) }
        : f.status >= 500
          ? { message: 'Server Error', status: String(f.status) }
          : { message: 'Fault injected', documentation_url: DOCS, status: String(f.status) });
    return { status: f.status, body, headers: { ...headers, ...f.headers } };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const token = tokenOf(req);
    let body: unknown = undefined;
    const record: RecordedGitHubRequest = { seq: ++seq, method, path: url.pathname, body: undefined, auth: token, status: 0 };
    requests.push(record);
    used++;
    const send = (status: number, payload: unknown, extra: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-github-media-type': 'github.v3; format=json',
        'x-github-request-id': `5A17:${String(record.seq).padStart(6, '0')}`,
        'x-github-api-version-selected': '2022-11-28',
        ...rateHeaders(),
        ...extra,
      });
      res.end(JSON.stringify(payload));
    };
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        (record as { body: unknown }).body = text;
        send(400, { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' });
        return;
      }
    }
    (record as { body: unknown }).body = body;
    const fault = faultFor(method, url.pathname);
    if (fault) {
      const answer = faultAnswer(fault);
      send(answer.status, answer.body, answer.headers);
      return;
    }
    try {
      const out = route(method, url.pathname, body, token);
      send(out.status, out.body);
    } catch (err) {
      if (err instanceof HttpError) send(err.status, err.body, err.headers);
      else send(500, { message: 'Server Error', status: '500' });
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    requests,
    requestsTo: (method, path) => requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path))),
    clearRequests: () => void requests.splice(0),
    addRepository,
    addToken: (token, repos = '*') => void tokens.set(token, repos),
    statuses: (repository, sha) => [...(repositories.get(repository.toLowerCase())?.statuses.get(sha) ?? [])],
    pullRequests: (repository) => [...(repositories.get(repository.toLowerCase())?.pulls ?? [])],
    fail: (fault) => void faults.push({ ...fault, remaining: fault.times ?? 1 }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
