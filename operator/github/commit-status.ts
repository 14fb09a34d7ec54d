import { Octokit } from '@octokit/rest';
import type { GitHubStatusReport } from '../../core/api/resources.ts';
import type { Logger } from '../../core/log.ts';
import { redactSecrets } from '../../core/redact.ts';

/**
 * Reports a Release's outcome per environment as a GitHub commit status (`santokit/<env>` on the
 * release's ref) through the REST API (`POST /repos/{owner}/{repo}/statuses/{sha}`).
 *
 * The token is used for the request and nothing else: it is never logged (Octokit's own request
 * log only ever sees method, path and status here), and every message built from GitHub's answer
 * is scrubbed of it. Failures are classified into a condition reason and what to do next: retry
 * after a delay (5xx, network, rate limit) or wait for the token Secret to change (401, 403, 404).
 */

export const GITHUB_API = 'https://api.github.com';

/** GitHub truncates nothing: a longer description is a 422. */
export const DESCRIPTION_LIMIT = 140;

/** Reasons of the `GitHubStatusReported` condition. */
export const GitHubReason = {
  Reported: 'Reported',
  TokenMissing: 'GitHubTokenMissing',
  Unauthorized: 'GitHubUnauthorized',
  Forbidden: 'GitHubForbidden',
  RepositoryNotFound: 'GitHubRepositoryNotFound',
  RateLimited: 'GitHubRateLimited',
  Unavailable: 'GitHubUnavailable',
  Rejected: 'GitHubRejected',
} as const;

export const GITHUB_CONDITION = 'GitHubStatusReported';

/**
 * Commit statuses left `pending` for environments that moved on before serving the release (their
 * `spec.release` names another one, or they are gone): GitHub would show them pending for ever.
 * Each is resolved as `error`, saying that the release was superseded. `wanting`: the environments
 * whose `spec.release` still names this release (they get their own verdicts).
 */
export function supersededReports(
  reported: readonly GitHubStatusReport[] | undefined,
  wanting: readonly string[],
  environments: ReadonlyArray<{ readonly name: string; readonly release?: string | undefined }>,
  release: string,
): GitHubStatusReport[] {
  return (reported ?? [])
    .filter((r) => r.state === 'pending' && !wanting.includes(r.environment))
    .map((r) => {
      const now = environments.find((e) => e.name === r.environment);
      const why =
        now === undefined
          ? `superseded: environment ${r.environment} was deleted before serving release ${release}`
          : now.release === undefined || now.release === ''
            ? `superseded: ${r.environment} no longer asks for release ${release}`
            : `superseded: ${r.environment} moved on to release ${now.release} before serving ${release}`;
      return { environment: r.environment, state: 'error' as const, description: commitStatusDescription(why) };
    })
    .sort((a, b) => a.environment.localeCompare(b.environment));
}

/** Where a status goes: repository `owner/name`, commit SHA, and the token to post with. */
export interface CommitStatusTarget {
  readonly repository: string;
  readonly sha: string;
  readonly token: string;
}

/**
 * Why a post failed, in terms the reconciler acts on: a transient failure is retried (after
 * `retryAfterMs` when GitHub said how long, else with backoff); any other waits until the token
 * Secret changes.
 */
export class GitHubReportError extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly transient: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'GitHubReportError';
  }
}

export interface CommitStatusReporterOptions {
  /** API base URL; default https://api.github.com (tests point it at a stand-in) */
  readonly baseUrl?: string;
  readonly log: Logger;
  /** per request; default 15 s */
  readonly requestTimeoutMs?: number;
  readonly now?: () => number;
}

export class CommitStatusReporter {
  private readonly baseUrl: string;
  private readonly now: () => number;

  constructor(private readonly options: CommitStatusReporterOptions) {
    this.baseUrl = (options.baseUrl ?? GITHUB_API).replace(/\/+$/, '');
    this.now = options.now ?? Date.now;
  }

  /** Posts one commit status with context `santokit/<environment>`; throws GitHubReportError. */
  async post(target: CommitStatusTarget, report: GitHubStatusReport): Promise<void> {
    const [owner, repo] = target.repository.split('/') as [string, string];
    const log = this.options.log;
    const octokit = new Octokit({
      auth: target.token,
      baseUrl: this.baseUrl,
      userAgent: 'santokit-operator',
      // Octokit's request log passes full request options (headers included) to `debug`: drop it.
      log: { debug: () => {}, info: (m: string) => log.debug(redactSecrets(m)), warn: () => {}, error: () => {} },
      request: { signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 15_000) },
    });
    try {
      await octokit.rest.repos.createCommitStatus({
        owner,
        repo,
        sha: target.sha,
        state: report.state,
        context: commitStatusContext(report.environment),
        // Descriptions are built from names and redacted messages; the token is scrubbed once more regardless.
        description: commitStatusDescription(report.description, target.token),
      });
    } catch (err) {
      throw classifyGitHubFailure(err, target, this.now());
    }
  }
}

/** The commit status context of an environment. */
export function commitStatusContext(environment: string): string {
  return `santokit/${environment}`;
}

/** A description GitHub accepts: one line, at most 140 characters, no secrets. */
export function commitStatusDescription(text: string, secret?: string): string {
  let out = redactSecrets(secret ? text.split(secret).join('***') : text).replace(/\s+/g, ' ').trim();
  if (out.length > DESCRIPTION_LIMIT) out = `${out.slice(0, DESCRIPTION_LIMIT - 1)}…`;
  return out;
}

interface ResponseLike {
  status?: number;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

/** Maps a failed request to a reason and a retry policy; the message carries GitHub's words, never the token. */
export function classifyGitHubFailure(err: unknown, target: Pick<CommitStatusTarget, 'repository' | 'token'>, now: number): GitHubReportError {
  const e = (err ?? {}) as ResponseLike;
  const status = typeof e.status === 'number' ? e.status : 0;
  const headers = e.response?.headers ?? {};
  const data = e.response?.data;
  const said = typeof data === 'object' && data !== null && typeof (data as { message?: unknown }).message === 'string' ? (data as { message: string }).message.slice(0, 200) : '';
  const clean = (text: string) => redactSecrets(target.token ? text.split(target.token).join('***') : text);
  const answer = (what: string) => clean(`GitHub answered ${status}${said ? ` (${said})` : ''}: ${what}`);
  const header = (name: string) => {
    const v = headers[name];
    return v === undefined ? undefined : Number(v);
  };
  const rateLimited = status === 429 || (status === 403 && (header('x-ratelimit-remaining') === 0 || header('retry-after') !== undefined));

  if (rateLimited) {
    const retryAfter = header('retry-after');
    const reset = header('x-ratelimit-reset');
    const waitMs = retryAfter !== undefined && Number.isFinite(retryAfter) ? retryAfter * 1000 : reset !== undefined && Number.isFinite(reset) ? reset * 1000 - now : 60_000;
    const bounded = Math.min(Math.max(waitMs, 1_000), 3_600_000);
    return new GitHubReportError(answer(`rate limited; retrying in ${Math.ceil(bounded / 1000)} s`), GitHubReason.RateLimited, true, bounded);
  }
  switch (status) {
    case 401:
      return new GitHubReportError(answer(`the token in the Secret is not valid for ${target.repository}; waiting for the Secret to change`), GitHubReason.Unauthorized, false);
    case 403:
      return new GitHubReportError(answer(`the token may not write commit statuses on ${target.repository} (it needs the repo:status scope or statuses: write); waiting for the Secret to change`), GitHubReason.Forbidden, false);
    case 404:
      return new GitHubReportError(answer(`repository ${target.repository} does not exist or the token cannot see it; waiting for the Secret to change`), GitHubReason.RepositoryNotFound, false);
    case 422:
      return new GitHubReportError(answer(`GitHub refused the commit status${validationDetail(data)}`), GitHubReason.Rejected, false);
    default:
      if (!e.response) return new GitHubReportError(clean(`could not reach GitHub: ${err instanceof Error ? err.message : String(err)}`), GitHubReason.Unavailable, true);
      return new GitHubReportError(answer(status >= 500 ? 'GitHub is unavailable; retrying with backoff' : 'unexpected answer; retrying with backoff'), GitHubReason.Unavailable, true);
  }
}

function validationDetail(data: unknown): string {
  const errors = (data as { errors?: Array<{ field?: string; message?: string; code?: string }> } | undefined)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return '';
  return `: ${errors.map((x) => x.message ?? `${x.field ?? '?'} ${x.code ?? 'invalid'}`).join('; ')}`;
}
