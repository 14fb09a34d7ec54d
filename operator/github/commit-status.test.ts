import { describe, expect, it } from 'vitest';
import { classifyGitHubFailure, commitStatusDescription, GitHubReason, supersededReports } from './commit-status.ts';

const token = 'ghp_' + 'A1b2'.repeat(9);
const target = { repository: 'acme/app', token };
const now = Date.parse('2026-01-01T00:00:00Z');

/** The shape of Octokit's RequestError: status, and the response when one came. */
function answered(status: number, data: unknown, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error('failed'), {
    name: 'HttpError',
    status,
    request: { method: 'POST', url: 'https://api.github.com/repos/acme/app/statuses/abc', headers: { authorization: 'token [REDACTED]' } },
    response: { status, url: 'https://api.github.com/repos/acme/app/statuses/abc', headers, data },
  });
}

describe('GitHub failure classification', () => {
  it('401 is GitHubUnauthorized, waits for the Secret, and never quotes the token', () => {
    const f = classifyGitHubFailure(answered(401, { message: `Bad credentials for ${token}`, documentation_url: 'https://docs.github.com/rest' }), target, now);
    expect(f.reason).toBe(GitHubReason.Unauthorized);
    expect(f.transient).toBe(false);
    expect(f.message).toContain('Bad credentials');
    expect(f.message).not.toContain(token);
  });

  it('403 and 429 with rate-limit headers are retried when GitHub says', () => {
    const reset = String(Math.floor(now / 1000) + 30);
    const primary = classifyGitHubFailure(answered(403, { message: 'API rate limit exceeded' }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }), target, now);
    expect(primary).toMatchObject({ reason: GitHubReason.RateLimited, transient: true, retryAfterMs: 30_000 });
    const secondary = classifyGitHubFailure(answered(429, { message: 'You have exceeded a secondary rate limit' }, { 'retry-after': '7' }), target, now);
    expect(secondary).toMatchObject({ reason: GitHubReason.RateLimited, transient: true, retryAfterMs: 7_000 });
  });

  it('403 without rate limiting is a permission problem; 404 an unknown or hidden repository; 422 a refusal', () => {
    expect(classifyGitHubFailure(answered(403, { message: 'Resource not accessible by integration' }, { 'x-ratelimit-remaining': '4999' }), target, now)).toMatchObject({ reason: GitHubReason.Forbidden, transient: false });
    expect(classifyGitHubFailure(answered(404, { message: 'Not Found' }), target, now)).toMatchObject({ reason: GitHubReason.RepositoryNotFound, transient: false });
    const rejected = classifyGitHubFailure(answered(422, { message: 'Validation Failed', errors: [{ field: 'state', message: 'state is not included in the list' }] }), target, now);
    expect(rejected).toMatchObject({ reason: GitHubReason.Rejected, transient: false });
    expect(rejected.message).toContain('state is not included in the list');
  });

  it('5xx and network failures are GitHubUnavailable with backoff', () => {
    expect(classifyGitHubFailure(answered(502, { message: 'Server Error' }), target, now)).toMatchObject({ reason: GitHubReason.Unavailable, transient: true, retryAfterMs: undefined });
    const network = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { name: 'HttpError', status: 500 });
    const f = classifyGitHubFailure(network, target, now);
    expect(f).toMatchObject({ reason: GitHubReason.Unavailable, transient: true });
    expect(f.message).toContain('could not reach GitHub');
  });
});

describe('commit status descriptions', () => {
  it('are one line of at most 140 characters, without the token or other secrets', () => {
    const d = commitStatusDescription(`SchemaDrift: token ${token} and postgres://u:pw@h/db\n${'y'.repeat(200)}`, token);
    expect(d.length).toBe(140);
    expect(d).not.toContain(token);
    expect(d).not.toContain('pw@');
    expect(d).not.toContain('\n');
  });
});

describe('pending commit statuses of environments that moved on', () => {
  const pending = (environment: string) => ({ environment, state: 'pending' as const, description: `${environment} is applying release r1` });

  it('resolves them as error (superseded), naming the release the environment moved to', () => {
    const reported = [pending('prod'), pending('staging'), { environment: 'dev', state: 'success' as const, description: 'release r1 serves dev' }, pending('qa')];
    const environments = [{ name: 'prod', release: 'r2' }, { name: 'staging', release: 'r1' }, { name: 'dev', release: 'r3' }];

    expect(supersededReports(reported, ['staging'], environments, 'r1')).toEqual([
      { environment: 'prod', state: 'error', description: 'superseded: prod moved on to release r2 before serving r1' },
      { environment: 'qa', state: 'error', description: 'superseded: environment qa was deleted before serving release r1' },
    ]);
  });

  it('leaves alone what is still wanted, already final, or never reported', () => {
    expect(supersededReports(undefined, [], [], 'r1')).toEqual([]);
    expect(supersededReports([pending('staging')], ['staging'], [{ name: 'staging', release: 'r1' }], 'r1')).toEqual([]);
    expect(supersededReports([{ environment: 'prod', state: 'failure', description: 'x' }], [], [{ name: 'prod', release: 'r2' }], 'r1')).toEqual([]);
  });
});
