import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, Environment, Release } from '../../core/api/resources.ts';
import { startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { startGitHubApi, type GitHubApi } from '../support/github-api.ts';

/**
 * `--emit <dir>`: stk writes Project, Environment, Connection and Release manifests into a GitOps
 * directory instead of the cluster, byte-stable; `--commit` commits exactly what changed and
 * `--pull-request` pushes a branch and opens a pull request on (a stand-in for) GitHub.
 */

const schemaV1 = `version: 1
tables:
  notes:
    id: { generate: ulid }
    columns:
      body: { type: string, nullable: false }
`;
const schemaV2 = `${schemaV1}      title: { type: string }
`;
const permissions = `tables:
  notes:
    select:
      - roles: [admin]
        columns: ["*"]
`;
const TOKEN = `ghp_${'e'.repeat(36)}`;

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out[path.relative(dir, full)] = fs.readFileSync(full, 'utf8');
    }
  };
  walk(dir);
  return out;
}

describe('stk --emit', () => {
  let operator: OperatorProcess;
  let source: TestRepo;
  let v1: string;
  let v2: string;
  const project = uniqueName('emit');
  const inProject = ['--project', project];

  /** A fresh GitOps repository holding the project and dev (with a secret-ref connection). */
  async function gitopsRepo(): Promise<TestRepo> {
    const repo = await createTestRepo('stk-gitops');
    await repo.commit({ 'README.md': 'santokit resources\n' }, 'init');
    for (const args of [
      ['project', 'create', project],
      ['env', 'create', ...inProject, 'dev'],
      ['env', 'create', ...inProject, 'prod'],
      ['connections', 'set', ...inProject, '--env', 'dev', '--name', 'main', '--secret-ref', 'dev-db/url'],
      ['connections', 'set', ...inProject, '--env', 'prod', '--name', 'main', '--secret-ref', 'prod-db/url'],
    ]) {
      const res = await stk([...args, '--emit', repo.dir, '--commit']);
      expectExit(res);
    }
    return repo;
  }

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-emit') });
    await waitForOperatorReady(operator);
    source = await createTestRepo('stk-src');
    v1 = await source.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    v2 = await source.commit({ 'schema/app.yaml': schemaV2 }, 'v2');
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it('writes the same bytes for the same input, commits only what changed, and needs no cluster for apply', async () => {
    const a = await gitopsRepo();
    const b = await gitopsRepo();
    const offline = { env: { KUBECONFIG: path.join(os.tmpdir(), 'no-such-kubeconfig') } };
    const applyA = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v1, '--repo', source.dir, '--emit', a.dir, '--commit'], offline);
    expectExit(applyA);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(applyA.stdout)![1]!;
    expect(applyA.stdout).toContain(`wrote ${project}/environments/dev.yaml\nwrote ${project}/releases/${id}.yaml\ncommit=`);
    const applyB = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v1, '--repo', source.dir, '--emit', b.dir]);
    expectExit(applyB);

    // Byte-stable: everything but the sealed-or-not connections (here secret refs: also equal).
    expect(files(b.dir)).toEqual(files(a.dir));
    const release = YAML.parse(fs.readFileSync(path.join(a.dir, project, 'releases', `${id}.yaml`), 'utf8')) as Release;
    expect(release).toMatchObject({ apiVersion: 'santokit.io/v1alpha1', kind: 'Release', metadata: { name: id, namespace: `stk-${project}` }, spec: { project, ref: v1 } });
    expect(release).not.toHaveProperty('status');
    const dev = YAML.parse(fs.readFileSync(path.join(a.dir, project, 'environments', 'dev.yaml'), 'utf8')) as Environment;
    expect(dev.spec).toEqual({ project, release: id });

    // The commit holds exactly the two files; a second emit changes nothing and commits nothing.
    const head = (await a.git.revparse(['HEAD'])).trim();
    expect((await a.git.raw(['show', '--name-only', '--format=%s', head])).split('\n').filter(Boolean)).toEqual([
      `santokit: apply ${id} to ${project}/dev`,
      `${project}/environments/dev.yaml`,
      `${project}/releases/${id}.yaml`,
    ]);
    const again = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v1, '--repo', source.dir, '--emit', a.dir, '--commit']);
    expectExit(again);
    expect(again.stdout).toContain('nothing changed');
    expect((await a.git.revparse(['HEAD'])).trim()).toBe(head);

    // --force is recorded on the environment for this apply only.
    const forced = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v2, '--repo', source.dir, '--emit', a.dir, '--force']);
    expectExit(forced);
    const id2 = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(forced.stdout)![1]!;
    expect((YAML.parse(fs.readFileSync(path.join(a.dir, project, 'environments', 'dev.yaml'), 'utf8')) as Environment).spec).toEqual({ project, release: id2, force: true });
  });

  it('promote and rollback move the pointer in the directory; a release that is not there is refused and nothing is written', async () => {
    const repo = await gitopsRepo();
    const applied = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v1, '--repo', source.dir, '--emit', repo.dir, '--commit']);
    expectExit(applied);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(applied.stdout)![1]!;

    const promoted = await stk(['release', 'promote', ...inProject, '--from', 'dev', '--to', 'prod', '--emit', repo.dir, '--commit']);
    expectExit(promoted);
    expect(promoted.stdout).toContain(`wrote ${project}/environments/prod.yaml`);
    expect((YAML.parse(fs.readFileSync(path.join(repo.dir, project, 'environments', 'prod.yaml'), 'utf8')) as Environment).spec).toEqual({ project, release: id });

    const before = files(repo.dir);
    const head = (await repo.git.revparse(['HEAD'])).trim();
    const unknown = await stk(['release', 'rollback', ...inProject, '--env', 'prod', '--to-release-id', 'rel-0000000000000000', '--emit', repo.dir, '--commit']);
    expectExit(unknown, 2);
    expect(unknown.stderr).toContain('release rel-0000000000000000 is not in');
    const noProject = await stk(['apply', '--project', 'nowhere', '--env', 'dev', '--ref', v1, '--repo', source.dir, '--emit', repo.dir]);
    expectExit(noProject, 2);
    expect(noProject.stderr).toContain(`stk project create nowhere --emit ${repo.dir}`);
    const dryRun = await stk(['apply', ...inProject, '--env', 'prod', '--ref', v1, '--repo', source.dir, '--emit', repo.dir, '--dry-run']);
    expectExit(dryRun, 1);
    expect(dryRun.stderr).toContain('does not go with --dry-run');
    expect(files(repo.dir)).toEqual(before);
    expect((await repo.git.revparse(['HEAD'])).trim()).toBe(head);
  });

  it('refuses an apply whose schema names a connection the environment lacks, writing nothing', async () => {
    const repo = await gitopsRepo();
    const ref = await source.commit({ 'schema/analytics.yaml': 'version: 1\ntables:\n  views:\n    connection: analytics\n    columns:\n      path: { type: string }\n' }, 'analytics');
    const before = files(repo.dir);
    const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', ref, '--repo', source.dir, '--emit', repo.dir, '--commit']);
    expectExit(res, 1);
    expect(res.stderr).toContain('environment dev has no connection named analytics');
    expect(files(repo.dir)).toEqual(before);
    await source.commit({ 'schema/analytics.yaml': null }, 'drop analytics again');
  });

  it('seals a connection URL into the manifest with the operator certificate: the URL is nowhere in the directory', async () => {
    const repo = await gitopsRepo();
    const url = 'postgres://app:s3cret-emit-pw@127.0.0.1:5432/app';
    const res = await stk(['connections', 'set', ...inProject, '--env', 'dev', '--name', 'main', '--db-url', '-', '--emit', repo.dir, '--commit'], { input: url });
    expectExit(res);
    const text = fs.readFileSync(path.join(repo.dir, project, 'connections', 'dev-main.yaml'), 'utf8');
    const conn = YAML.parse(text) as Connection;
    expect(conn.spec.sealedUrl?.ciphertext).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(conn.spec.secretRef).toBeUndefined();
    expect(JSON.stringify(files(repo.dir))).not.toContain('s3cret-emit-pw');
    expect(res.stdout + res.stderr).not.toContain('s3cret-emit-pw');
  });

  describe('--pull-request', () => {
    let github: GitHubApi;
    beforeAll(async () => {
      github = await startGitHubApi({ repositories: ['acme/deploy'], tokens: { [TOKEN]: ['acme/deploy'] } });
    });
    afterAll(async () => {
      await github?.close();
    });

    async function withOrigin(): Promise<{ repo: TestRepo; origin: string }> {
      const repo = await gitopsRepo();
      const origin = fs.mkdtempSync(path.join(os.tmpdir(), 'stk-origin-'));
      await simpleGit({ baseDir: origin }).init(true);
      await repo.git.addRemote('origin', origin);
      await repo.git.push('origin', 'main');
      return { repo, origin };
    }
    const githubEnv = (token: string) => ({ env: { GITHUB_TOKEN: token, GITHUB_REPOSITORY: 'acme/deploy', GITHUB_API_URL: github.url } });

    it('pushes a branch with the manifests, opens the pull request against the branch it started on, and leaves that branch checked out', async () => {
      const { repo, origin } = await withOrigin();
      const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v1, '--repo', source.dir, '--emit', repo.dir, '--pull-request'], githubEnv(TOKEN));
      expectExit(res);
      const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(res.stdout)![1]!;
      const branch = `santokit/${project}-dev-${id}`;
      const [pr] = github.pullRequests('acme/deploy').filter((p) => p.head.ref === branch);
      expect(pr).toMatchObject({ base: { ref: 'main' }, title: `santokit: apply ${id} to ${project}/dev`, state: 'open' });
      expect(res.stdout).toContain(`pullRequest=${pr!.html_url}`);
      expect(github.requestsTo('POST', '/repos/acme/deploy/pulls').at(-1)?.auth).toBe(TOKEN);

      // The branch on the remote carries the release; the local checkout is back on main, unchanged.
      const onRemote = await simpleGit({ baseDir: origin }).raw(['ls-tree', '-r', '--name-only', branch]);
      expect(onRemote.split('\n')).toContain(`${project}/releases/${id}.yaml`);
      expect((await repo.git.revparse(['--abbrev-ref', 'HEAD'])).trim()).toBe('main');
      expect(fs.existsSync(path.join(repo.dir, project, 'releases', `${id}.yaml`))).toBe(false);
      expect(res.stdout + res.stderr).not.toContain(TOKEN);
    });

    it('a token GitHub refuses: exit 3, the pushed branch is named, the token is printed nowhere', async () => {
      const { repo, origin } = await withOrigin();
      const bad = `ghp_${'0'.repeat(36)}`;
      const res = await stk(['apply', ...inProject, '--env', 'dev', '--ref', v2, '--repo', source.dir, '--emit', repo.dir, '--pull-request'], githubEnv(bad));
      expectExit(res, 3);
      expect(res.stderr).toContain('GitHub answered 401 for acme/deploy');
      expect(res.stderr).toMatch(/the branch santokit\/\S+ was pushed/);
      expect(res.stdout + res.stderr).not.toContain(bad);
      // Nothing is lost: the branch with the manifests is on the remote for a retry by hand.
      const branches = await simpleGit({ baseDir: origin }).raw(['branch', '--list', 'santokit/*']);
      expect(branches).toContain(`santokit/${project}-dev-`);
    });
  });
});
