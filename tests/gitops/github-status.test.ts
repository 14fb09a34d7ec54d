import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCondition } from '../../core/api/conditions.ts';
import { Kinds, type Release } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { createLogger } from '../../core/log.ts';
import { buildRelease } from '../../core/release/build.ts';
import { readRepoAtRef } from '../../core/release/source.ts';
import { SCHEMA_LOCK_KEY } from '../../core/schema/bookkeeping.ts';
import { releaseManifest } from '../../cli/manifests.ts';
import { CommitStatusReporter, GitHubReportError } from '../../operator/github/commit-status.ts';
import { adminClient, eventually, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { startGitHubApi, type GitHubApi } from '../support/github-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { schemaV1, schemaDropName, permissions } from '../support/fixtures.ts';

/**
 * GitHub commit statuses: a Release with `spec.github` has its outcome per environment posted on its
 * ref as `santokit/<env>` (pending, success, failure, error), once each, to a stand-in of the GitHub
 * REST API the operator is pointed at with --github-api-url. GitHub's failures never change Ready.
 */

const client = await adminClient();
const repository = 'acme/app';
const goodToken = `ghp_${'G00d'.repeat(9)}`;
const badToken = `ghp_${'BadT'.repeat(9)}`;

type Rel = Release & KubeObject;

describe('GitHub commit statuses', () => {
  let api: GitHubApi;
  let operator: OperatorProcess;
  let leaseName: string;
  let project: string;
  let namespace: string;
  let repo: TestRepo;
  const databases = new Map<string, TestDatabase>();
  const start = async () => {
    operator = await startOperator({ leaseName, args: ['--github-api-url', api.url] });
    await waitForOperatorReady(operator);
  };

  beforeAll(async () => {
    api = await startGitHubApi({ repositories: [repository], tokens: { [goodToken]: [repository] } });
    leaseName = uniqueName('lease-ghstatus');
    await start();
    project = uniqueName('ghst');
    namespace = `stk-${project}`;
    expectExit(await stk(['project', 'create', project]));
    repo = await createTestRepo();
  });

  afterAll(async () => {
    await operator?.stop();
    await api?.close();
    for (const db of databases.values()) await db.drop();
  });

  async function newEnvironment(prefix: string): Promise<string> {
    const name = uniqueName(prefix);
    const created = await stk(['env', 'create', '--project', project, name]);
    expectExit(created);
    const db = await createTestDatabase(`ghstatus_${prefix}`);
    databases.set(name, db);
    const conn = await stk(['connections', 'set', '--project', project, '--env', name, '--name', 'main', '--db-url', db.url]);
    expectExit(conn);
    return name;
  }

  async function tokenSecret(token: string): Promise<string> {
    const name = uniqueName('gh-token');
    await client.create(Kinds.Secret, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: { token: Buffer.from(`${token}\n`).toString('base64') } } as KubeObject);
    return name;
  }

  /** Commits the schema and creates its Release with spec.github, as a GitOps repository would hold it. */
  async function createRelease(schema: string, message: string, secret: string): Promise<Rel> {
    const ref = await repo.commit({ 'schema/app.yaml': schema, 'config/permissions.yaml': permissions }, `${message} ${uniqueName('c')}`);
    const built = buildRelease(await readRepoAtRef(repo.dir, ref), { project, repo: repo.dir });
    await client.create(Kinds.Release, releaseManifest(built, namespace, { repository, tokenSecretRef: { name: secret, key: 'token' } }).release);
    return client.get<Rel>(Kinds.Release, built.id, namespace);
  }

  const setDesired = (env: string, spec: { release?: string; force?: boolean }) => client.patch(Kinds.Environment, env, namespace, { spec });
  const posts = (ref: string) => api.requestsTo('POST', `/repos/${repository}/statuses/${ref}`);
  const postedStates = (ref: string, env: string) =>
    posts(ref)
      .filter((r) => r.status === 201 && (r.body as { context: string }).context === `santokit/${env}`)
      .map((r) => (r.body as { state: string }).state);
  const release = (id: string) => client.get<Rel>(Kinds.Release, id, namespace);

  function stateOnGitHub(ref: string, env: string, state: string, timeoutMs = 45_000) {
    return eventually(async () => api.statuses(repository, ref).find((s) => s.context === `santokit/${env}` && s.state === state), { what: `${state} for santokit/${env} on ${ref}`, timeoutMs });
  }

  it('posts pending while the environment applies the release, then success once it serves it, each once', async () => {
    const env = await newEnvironment('ok');
    const secret = await tokenSecret(goodToken);
    const rel = await createRelease(schemaV1, 'v1', secret);
    // Hold the schema lock of the environment's database so the apply waits until pending was seen.
    // The apply waits for it up to its lock_timeout (DEFAULT_LOCK_TIMEOUT_MS, 5 s) after reaching
    // it, then fails and is retried: from then on the verdict is "retrying" (an `error` status),
    // never "applying" again. So pending comes within those seconds or not at all; the wait may be
    // longer than that without ever letting a pending posted out of order pass.
    const lock: postgres.ReservedSql = await databases.get(env)!.sql.reserve();
    await lock`SELECT pg_catalog.pg_advisory_lock(${SCHEMA_LOCK_KEY}::int8)`;
    try {
      await setDesired(env, { release: rel.metadata.name });
      const pending = await stateOnGitHub(rel.spec.ref, env, 'pending', 10_000);
      expect(pending.description).toBe(`${env} is applying release ${rel.metadata.name}`);
    } finally {
      await lock`SELECT pg_catalog.pg_advisory_unlock(${SCHEMA_LOCK_KEY}::int8)`;
      lock.release();
    }
    const success = await stateOnGitHub(rel.spec.ref, env, 'success');
    expect(success).toMatchObject({ description: `release ${rel.metadata.name} serves ${env}`, creator: { login: 'santokit-bot' } });

    const states = postedStates(rel.spec.ref, env);
    expect(states[0]).toBe('pending');
    expect(states.at(-1)).toBe('success');
    expect(states.filter((s) => s === 'pending')).toHaveLength(1);
    expect(states.filter((s) => s === 'success')).toHaveLength(1);
    expect(posts(rel.spec.ref).every((r) => r.auth === goodToken)).toBe(true);

    const done = await eventually(async () => {
      const r = await release(rel.metadata.name);
      return r.status?.github?.[0]?.state === 'success' && findCondition(r.status, 'GitHubStatusReported')?.status === 'True' ? r : undefined;
    }, { what: 'the release to record the success it posted' });
    expect(done.status?.github).toEqual([{ environment: env, state: 'success', description: success.description }]);
    expect(findCondition(done.status, 'GitHubStatusReported')).toMatchObject({ reason: 'Reported', message: expect.stringContaining(`santokit/${env}=success`) });
    expect(findCondition(done.status, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  });

  it('posts failure with the reason for a destructive release, and nothing again after an operator restart', async () => {
    const env = await newEnvironment('destr');
    const secret = await tokenSecret(goodToken);
    const v1 = await createRelease(schemaV1, 'v1 before drop', secret);
    await setDesired(env, { release: v1.metadata.name });
    await stateOnGitHub(v1.spec.ref, env, 'success');

    const drop = await createRelease(schemaDropName, 'drop name', secret);
    await setDesired(env, { release: drop.metadata.name });
    const failure = await stateOnGitHub(drop.spec.ref, env, 'failure');
    expect(failure.description).toMatch(/^DestructiveChange: the plan has destructive steps/);
    expect(failure.description!.length).toBeLessThanOrEqual(140);
    await eventually(async () => ((await release(drop.metadata.name)).status?.github?.[0]?.state === 'failure' ? true : undefined), { what: 'the failure to be recorded' });

    // A restart re-reconciles every release: what was posted is in status, so nothing goes out again.
    const before = api.requests.length;
    await operator.stop();
    await start();
    await eventually(
      async () => (operator.records().some((r) => r.controller === 'release' && r.key === `${namespace}/${drop.metadata.name}` && r.msg === 'reconciled') ? true : undefined),
      { what: 'the restarted operator to reconcile the release' },
    );
    await eventually(
      async () => (operator.records().some((r) => r.controller === 'release' && r.key === `${namespace}/${v1.metadata.name}` && r.msg === 'reconciled') ? true : undefined),
      { what: 'the restarted operator to reconcile the previous release' },
    );
    expect(api.requests.slice(before).filter((r) => r.path.includes(drop.spec.ref) || r.path.includes(v1.spec.ref))).toEqual([]);
    expect(postedStates(drop.spec.ref, env).filter((s) => s === 'failure')).toHaveLength(1);

    // Forcing it turns the commit status green.
    await setDesired(env, { force: true });
    await stateOnGitHub(drop.spec.ref, env, 'success');
  });

  it('a bad token: GitHubStatusReported=False (GitHubUnauthorized), Ready unaffected, the token nowhere; a fixed Secret reports', async () => {
    const env = await newEnvironment('badtok');
    const secret = await tokenSecret(badToken);
    const rel = await createRelease(schemaV1, 'v1 bad token', secret);
    await setDesired(env, { release: rel.metadata.name });
    const refused = await eventually(async () => {
      const r = await release(rel.metadata.name);
      return findCondition(r.status, 'GitHubStatusReported')?.reason === 'GitHubUnauthorized' && findCondition(r.status, 'Ready')?.reason === 'Succeeded' ? r : undefined;
    }, { what: 'GitHubUnauthorized with the release served', timeoutMs: 45_000 });
    expect(findCondition(refused.status, 'GitHubStatusReported')).toMatchObject({ status: 'False', message: expect.stringContaining('Bad credentials') });
    expect(findCondition(refused.status, 'Ready')).toMatchObject({ status: 'True' });
    expect(refused.status?.github ?? []).toEqual([]);
    expect(api.statuses(repository, rel.spec.ref)).toEqual([]);
    expect(posts(rel.spec.ref).every((r) => r.status === 401 && r.auth === badToken)).toBe(true);

    const events = await eventually(async () => {
      const list = await client.list<KubeObject & { reason: string; involvedObject: { name: string } }>({ group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true }, { namespace });
      const mine = list.items.filter((e) => e.involvedObject.name === rel.metadata.name);
      return mine.some((e) => e.reason === 'GitHubUnauthorized') ? mine : undefined;
    }, { what: 'a GitHubUnauthorized event' });
    expect(JSON.stringify(refused)).not.toContain(badToken);
    expect(JSON.stringify(events)).not.toContain(badToken);
    expect(operator.logs()).not.toContain(badToken);

    // The same token is not tried again until the Secret changes; then the statuses go out.
    const tried = posts(rel.spec.ref).length;
    await client.patch(Kinds.Secret, secret, namespace, { data: { token: Buffer.from(goodToken).toString('base64') } });
    await stateOnGitHub(rel.spec.ref, env, 'success', 30_000);
    expect(posts(rel.spec.ref).slice(0, tried).every((r) => r.auth === badToken)).toBe(true);
    const recovered = await eventually(async () => {
      const r = await release(rel.metadata.name);
      return findCondition(r.status, 'GitHubStatusReported')?.status === 'True' ? r : undefined;
    }, { what: 'GitHubStatusReported=True after the Secret changed' });
    expect(recovered.status?.github).toEqual([expect.objectContaining({ environment: env, state: 'success' })]);
    expect(operator.logs()).not.toContain(goodToken);
  });

  it('a missing Secret is GitHubTokenMissing; GitHub 5xx and rate limits are retried with backoff, Ready unaffected', async () => {
    const env = await newEnvironment('retry');
    const secret = uniqueName('gh-token');
    const rel = await createRelease(schemaV1, 'v1 retry', secret);
    await setDesired(env, { release: rel.metadata.name });
    await eventually(async () => {
      const r = await release(rel.metadata.name);
      return findCondition(r.status, 'GitHubStatusReported')?.reason === 'GitHubTokenMissing' && findCondition(r.status, 'Ready')?.reason === 'Succeeded' ? true : undefined;
    }, { what: 'GitHubTokenMissing with the release served', timeoutMs: 45_000 });

    api.fail({ method: 'POST', path: `/repos/${repository}/statuses/${rel.spec.ref}`, status: 502, times: 2 });
    api.fail({ method: 'POST', path: `/repos/${repository}/statuses/${rel.spec.ref}`, status: 429, times: 1, headers: { 'retry-after': '1' } });
    await client.create(Kinds.Secret, { apiVersion: 'v1', kind: 'Secret', metadata: { name: secret, namespace }, data: { token: Buffer.from(goodToken).toString('base64') } } as KubeObject);
    await stateOnGitHub(rel.spec.ref, env, 'success', 45_000);
    expect(posts(rel.spec.ref).map((r) => r.status)).toEqual([502, 502, 429, 201]);
    const r = await eventually(async () => {
      const got = await release(rel.metadata.name);
      return findCondition(got.status, 'GitHubStatusReported')?.status === 'True' ? got : undefined;
    }, { what: 'GitHubStatusReported=True after the retries' });
    expect(findCondition(r.status, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  });
});

describe('the commit status reporter against the GitHub REST API stand-in', () => {
  let api: GitHubApi;
  const sha = 'a'.repeat(40);
  const reporter = () => new CommitStatusReporter({ baseUrl: api.url, log: createLogger('test', 'silent') });

  beforeAll(async () => {
    api = await startGitHubApi({ repositories: [repository], tokens: { [goodToken]: '*' } });
  });
  afterAll(() => api?.close());

  it('posts the status with the token and context; GitHub answers with its commit status object', async () => {
    await reporter().post({ repository, sha, token: goodToken }, { environment: 'dev', state: 'pending', description: 'dev is applying release rel-1' });
    const [req] = api.requestsTo('POST', `/repos/${repository}/statuses/${sha}`);
    expect(req).toMatchObject({ auth: goodToken, status: 201, body: { state: 'pending', context: 'santokit/dev', description: 'dev is applying release rel-1' } });
    const [status] = api.statuses(repository, sha);
    expect(status).toMatchObject({ state: 'pending', context: 'santokit/dev', id: expect.any(Number), created_at: expect.stringMatching(/Z$/) });
  });

  it('classifies what GitHub refuses: a bad state (422), an unknown repository (404), a bad token (401)', async () => {
    const post = (target: { repository: string; token: string }, state = 'success') =>
      reporter().post({ ...target, sha }, { environment: 'dev', state: state as 'success', description: 'ok' }).then(() => undefined, (e: unknown) => e);
    expect(await post({ repository, token: goodToken }, 'done')).toMatchObject({ reason: 'GitHubRejected', message: expect.stringContaining('state is not included in the list') });
    expect(await post({ repository: 'acme/nope', token: goodToken })).toMatchObject({ reason: 'GitHubRepositoryNotFound', transient: false });
    const unauthorized = await post({ repository, token: badToken });
    expect(unauthorized).toBeInstanceOf(GitHubReportError);
    expect(unauthorized).toMatchObject({ reason: 'GitHubUnauthorized', transient: false });
    expect((unauthorized as Error).message).not.toContain(badToken);
  });

  it('answers like GitHub: 422 Validation Failed for a long description, x-ratelimit headers, 401 for no or unknown credentials', async () => {
    const url = `${api.url}/repos/${repository}/statuses/${sha}`;
    const long = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${goodToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ state: 'success', description: 'x'.repeat(141) }) });
    expect(long.status).toBe(422);
    expect(await long.json()).toMatchObject({ message: 'Validation Failed', errors: [{ resource: 'Status', field: 'description' }], documentation_url: expect.stringContaining('docs.github.com') });
    expect(long.headers.get('x-ratelimit-limit')).toBe('5000');
    expect(Number(long.headers.get('x-ratelimit-remaining'))).toBeLessThan(5000);
    const anonymous = await fetch(url, { method: 'POST', body: JSON.stringify({ state: 'success' }) });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ message: 'Requires authentication' });
    const unknown = await fetch(url, { method: 'POST', headers: { authorization: `token ${badToken}` }, body: JSON.stringify({ state: 'success' }) });
    expect(await unknown.json()).toMatchObject({ message: 'Bad credentials', documentation_url: expect.any(String) });
  });
});
