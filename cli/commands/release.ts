import path from 'node:path';
import type { Command } from 'commander';
import { findCondition } from '../../core/api/conditions.ts';
import { Kinds, RELEASE_IN_USE_FINALIZER, type ApplyMode, type Connection, type ConnectionReleaseState, type Environment, type PipelineStep, type Release, type ReleaseRequest, type RequestOutcome } from '../../core/api/resources.ts';
import { ConflictError, ForbiddenError, NotFoundError, UnavailableError, UsageError, ValidationError } from '../../core/errors.ts';
import { isAlreadyExists, KubeClient, type KubeObject } from '../../core/kube/client.ts';
import { adoptReleaseChunks, CHUNK_DATA_KEY, readReleaseContent, type ChunkConfigMap } from '../../core/release/content.ts';
import type { BuiltRelease } from '../../core/release/build.ts';
import { contextRoot } from '../context-file.ts';
import { addEmitOptions, emitTarget } from '../emit.ts';
import type { GitOpsDir } from '../gitops.ts';
import { environmentManifest, releaseManifest, type GitHubReporting } from '../manifests.ts';
import { formatTable, printJson, println } from '../output.ts';
import { outcomeError, requestEnvironmentChange } from '../release-requests.ts';
import { run, type Flags } from '../runner.ts';
import { Session } from '../session.ts';
import { hasDestructiveSteps } from '../ui/plan-format.ts';
import { isInteractive } from '../ui/terminal.ts';
import { namespaceOfProject } from './project.ts';

type Env = Environment & KubeObject;
type Rel = Release & KubeObject;

const onlyParts = ['schema', 'permissions', 'release'] as const;
type OnlyPart = (typeof onlyParts)[number];

function parseOnly(value: unknown): OnlyPart[] | undefined {
  if (value === undefined) return undefined;
  const parts = String(value)
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const bad = parts.filter((p) => !(onlyParts as readonly string[]).includes(p));
  if (bad.length > 0 || parts.length === 0) throw new UsageError(`--only takes a comma list of ${onlyParts.join(', ')} (got ${String(value)})`);
  return parts as OnlyPart[];
}

function timeoutMs(flags: Flags): number {
  return Number(flags.timeout ?? 120) * 1000;
}

/** Every connection the release's tables name must exist in the env and not be known unreachable. */
async function checkConnections(client: KubeClient, namespace: string, env: string, built: BuiltRelease): Promise<void> {
  const { items } = await client.list<Connection & KubeObject>(Kinds.Connection, { namespace });
  const ofEnv = items.filter((c) => c.spec.environment === env);
  const needed = Object.keys(built.content.schema).sort();
  const missing = needed.filter((n) => !ofEnv.some((c) => c.spec.name === n));
  if (missing.length > 0) {
    throw new ValidationError(`environment ${env} has no connection named ${missing.join(', ')}, which the schema's tables use`, [], {
      reason: 'ConnectionMissing',
      hint: `create it: stk connections set --env ${env} --name ${missing[0]} --db-url -`,
    });
  }
  for (const name of needed) {
    const reachable = findCondition(ofEnv.find((c) => c.spec.name === name)?.status, 'Reachable');
    if (reachable?.status === 'False') {
      throw new UnavailableError(`connection ${name} of environment ${env} is not reachable (${reachable.reason}): ${reachable.message}`, {
        reason: 'ConnectionFailed',
        retryable: false,
        hint: `fix it, then check with: stk connections test --env ${env} --name ${name}`,
      });
    }
  }
}

/**
 * Creates the Release, or reuses the one with the same id (same content and ref). Returns whether
 * it was created. A chunked Release's ConfigMaps are written first, so the Release never names a
 * chunk that is not there, and then owned by it, so deleting the Release deletes them.
 */
async function ensureRelease(client: KubeClient, namespace: string, built: BuiltRelease, github: GitHubReporting | undefined): Promise<boolean> {
  const existing = await client.find<Rel>(Kinds.Release, built.id, namespace);
  if (existing) {
    if (existing.spec.contentHash !== built.contentHash) throw new ConflictError(`release ${built.id} exists with other content (hash prefix collision)`);
    return false;
  }
  const { release, chunks } = releaseManifest(built, namespace, github);
  const written: ChunkConfigMap[] = [];
  for (const chunk of chunks) written.push(await writeChunk(client, chunk));
  // Created with the operator's in-use finalizer: the environment is asked to use it at once, and a
  // delete before the operator first saw it must not take it from under that request.
  const created = await client.create<Rel>(Kinds.Release, { ...release, metadata: { ...release.metadata, finalizers: [RELEASE_IN_USE_FINALIZER] } });
  // The operator adds the owner too (for chunks written by GitOps); a user without patch on ConfigMaps leaves it to it.
  await adoptReleaseChunks(client, created, written.map((object) => ({ object }))).catch((err: unknown) => {
    if (!(err instanceof ForbiddenError)) throw err;
  });
  return true;
}

/**
 * Creates one chunk ConfigMap. One that exists already is reused if it holds the same bytes and
 * belongs to no Release (an earlier attempt that stopped before the Release was created); else
 * it is left over from a deleted Release of the same id (its garbage collection may be pending)
 * and is replaced.
 */
async function writeChunk(client: KubeClient, chunk: ChunkConfigMap): Promise<ChunkConfigMap> {
  try {
    return await client.create<ChunkConfigMap>(Kinds.ConfigMap, chunk);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  const found = await client.find<ChunkConfigMap>(Kinds.ConfigMap, chunk.metadata.name, chunk.metadata.namespace);
  const same = found && found.binaryData?.[CHUNK_DATA_KEY] === chunk.binaryData[CHUNK_DATA_KEY] && (found.metadata.ownerReferences ?? []).length === 0 && !found.metadata.deletionTimestamp;
  if (found && same) return found;
  await client.delete(Kinds.ConfigMap, chunk.metadata.name, chunk.metadata.namespace);
  // The old object may take a moment to go (a finalizer, the garbage collector): try again until it has.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await client.create<ChunkConfigMap>(Kinds.ConfigMap, chunk);
    } catch (err) {
      if (!isAlreadyExists(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** `--github-repository` and `--github-token-secret` together: where the operator reports commit statuses. */
function gitHubReporting(flags: Flags): GitHubReporting | undefined {
  const repository = flags.githubRepository as string | undefined;
  const secret = flags.githubTokenSecret as string | undefined;
  if (repository === undefined && secret === undefined) return undefined;
  const [name, key, ...rest] = String(secret ?? '').split('/');
  if (!repository || !/^[\w.-]+\/[\w.-]+$/.test(repository) || !name || !key || rest.length > 0) {
    throw new UsageError('commit statuses need both --github-repository <owner>/<name> and --github-token-secret <secret>/<key>');
  }
  return { repository, tokenSecretRef: { name, key } };
}

/** `stk apply --emit`: the Release and the environment's new pointer as files, no cluster needed. */
async function emitApply(dir: GitOpsDir, flags: Flags, a: { project: string; envName: string; built: BuiltRelease; github: GitHubReporting | undefined }): Promise<void> {
  const { project, envName, built } = a;
  if (flags.dryRun || flags.only !== undefined) throw new UsageError('--emit writes the whole release: it does not go with --dry-run or --only');
  const namespace = dir.namespaceOf(project);
  const env = dir.environment(project, envName);
  const declared = dir.connections(project, envName).map((c) => c.spec.name);
  const missing = Object.keys(built.content.schema).sort().filter((n) => !declared.includes(n));
  if (missing.length > 0) {
    throw new ValidationError(`environment ${envName} has no connection named ${missing.join(', ')} in ${dir.root}, which the schema's tables use`, [], {
      reason: 'ConnectionMissing',
      hint: `write it: stk connections set --env ${envName} --name ${missing[0]} --db-url - --emit ${dir.root}`,
    });
  }
  const file = dir.releaseFile(project, built.id);
  const existing = dir.release(project, built.id);
  if (existing && existing.spec.contentHash !== built.contentHash) throw new ConflictError(`${file} holds release ${built.id} with other content`);
  const manifests = releaseManifest(built, namespace, a.github);
  // Chunks first, as in the cluster; a Release already written keeps its bytes, and so do its chunks.
  const release = existing ?? manifests.release;
  for (const ref of release.spec.content?.chunks ?? []) {
    const chunkFile = dir.releaseChunkFile(project, ref.name);
    if (existing && dir.read(chunkFile) !== undefined) continue;
    const chunk = manifests.chunks.find((c) => c.metadata.name === ref.name);
    const made = manifests.release.spec.content?.chunks.find((c) => c.name === ref.name);
    if (!chunk || made?.sha256 !== ref.sha256) {
      throw new ConflictError(`${file} names chunk ${ref.name}, which is not in ${dir.root} and this stk would write it with other bytes`, { hint: `delete ${file} and apply again: the release is written anew with its chunks` });
    }
    dir.write(chunkFile, chunk);
  }
  dir.write(file, release);
  const { force: _force, ...spec } = env.spec;
  dir.write(dir.environmentFile(project, envName), environmentManifest(envName, namespace, { ...spec, release: built.id, ...(flags.force ? { force: true } : {}) }));
  const ref = built.content.ref;
  const published = await dir.publish(flags, {
    title: `santokit: apply ${built.id} to ${project}/${envName}`,
    body: `Release ${built.id} of ref ${ref}${flags.force ? ', destructive steps allowed (force)' : ''}.`,
    branch: `santokit/${project}-${envName}-${built.id}`,
  });
  dir.report(flags, published, { releaseId: built.id });
}

/** `release promote|rollback --emit`: move the environment's pointer in the directory. */
async function emitPointer(dir: GitOpsDir, flags: Flags, a: { project: string; envName: string; release: string; action: 'promote' | 'rollback' }): Promise<void> {
  const { project, envName, release } = a;
  const namespace = dir.namespaceOf(project);
  const env = dir.environment(project, envName);
  if (!dir.release(project, release)) throw new NotFoundError(`release ${release} is not in ${dir.root}`, { reason: 'ReleaseNotFound', hint: `write it with stk apply --emit ${dir.root}` });
  const { force: _force, ...spec } = env.spec;
  dir.write(dir.environmentFile(project, envName), environmentManifest(envName, namespace, { ...spec, release }));
  const published = await dir.publish(flags, { title: `santokit: ${a.action} ${project}/${envName} to ${release}`, body: `${a.action === 'promote' ? 'Promote' : 'Roll back'} environment ${envName} to release ${release}.`, branch: `santokit/${project}-${envName}-${a.action}-${release}` });
  dir.report(flags, published, { releaseId: release });
}

function stepLine(s: PipelineStep): string {
  return `${s.name}${s.connection ? ` ${s.connection}` : ''}: ${s.state.toLowerCase()}${s.reason && s.state === 'Failed' ? ` (${s.reason})` : ''}${s.message ? `: ${s.message}` : ''}`;
}

const applyModes: readonly ApplyMode[] = ['transactional', 'two-phase', 'online'];

function parseMode(value: unknown): ApplyMode | undefined {
  if (value === undefined) return undefined;
  if (!(applyModes as readonly string[]).includes(String(value))) throw new UsageError(`--mode takes one of ${applyModes.join(', ')} (got ${String(value)})`);
  return value as ApplyMode;
}

/** One line per connection: the release its database is at, and the step that failed there. */
function connectionLine(c: ConnectionReleaseState): string {
  const state = { AtTarget: 'at the release', Behind: 'not at the release yet', Failed: 'failed', InDoubt: 'prepared, not committed' }[c.state ?? 'Behind'];
  const failed = c.state === 'Failed' ? `: ${c.failedStep ? `${c.failedStep} ` : ''}(${c.reason ?? 'unknown'})` : '';
  return `connection ${c.name}: at ${c.release ?? 'no release'} (${state})${failed}`;
}

function printPlans(outcome: RequestOutcome): void {
  for (const plan of outcome.plans ?? []) {
    const count = plan.steps.length + (plan.omittedSteps ?? 0);
    println(`plan ${plan.connection}: ${count === 0 ? 'no changes' : `${count} step(s)`}`);
    for (const line of plan.text.split('\n').filter(Boolean)) println(`  ${line}`);
  }
}

const destructiveHint = 'pass --force to apply destructive steps (on a terminal stk shows them and asks first; --yes answers for you)';

/** The error of a refused request; a destructive plan's names the flag that answers it without a terminal. */
function refusal(outcome: RequestOutcome): Error {
  const err = outcomeError(outcome);
  return outcome.reason === 'DestructiveChange' ? new ConflictError(err.message, { reason: 'DestructiveChange', hint: destructiveHint }) : err;
}

function cancelled(): UsageError {
  return new UsageError('apply cancelled: nothing was changed');
}

/**
 * Sends an apply request and draws `status.steps` live while the operator works: a watch on the
 * Environment feeds the Ink view; steps left over from the previous request are not shown.
 */
async function applyWithLivePipeline(
  ui: typeof import('../ui/render.tsx'),
  client: KubeClient,
  namespace: string,
  envName: string,
  title: string,
  request: Omit<ReleaseRequest, 'id'>,
  wait: { setDesired: boolean; timeoutMs: number },
): Promise<RequestOutcome> {
  const before = await client.get<Env>(Kinds.Environment, envName, namespace);
  const stale = JSON.stringify(before.status?.steps ?? []);
  const view = ui.renderPipeline(title);
  let fresh = false;
  const watch = await client
    .watch(KubeClient.path(Kinds.Environment, namespace), { fieldSelector: `metadata.name=${envName}`, resourceVersion: before.metadata.resourceVersion }, (type, obj) => {
      if (type !== 'ADDED' && type !== 'MODIFIED') return;
      const steps = (obj as Env).status?.steps ?? [];
      fresh ||= JSON.stringify(steps) !== stale;
      if (fresh) view.update(steps);
    }, () => undefined)
    .catch(() => undefined);
  try {
    const { outcome, env } = await requestEnvironmentChange(client, namespace, envName, request, wait);
    view.update(env.status?.steps ?? []);
    await view.finish(outcome.outcome === 'Succeeded' ? `${envName} now at ${outcome.release}` : `${outcome.action} refused (${outcome.reason ?? 'unknown'})`);
    if (outcome.plans?.length && outcome.outcome === 'Succeeded') process.stdout.write(`${ui.renderPlansToString(outcome.plans)}\n`);
    return outcome;
  } catch (err) {
    await view.finish('failed');
    throw err;
  } finally {
    watch?.abort();
  }
}

export function registerReleaseCommands(program: Command): void {
  const apply = program
    .command('apply')
    .description('validate the repo at a Git ref, snapshot it as a Release and move an environment to it (plan → gates → apply → drift → permissions → release)')
    .requiredOption('--ref <ref>', 'Git ref (commit SHA, branch or tag) whose tree is released; never the working tree')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment (default: context)')
    .option('--repo <path>', 'repository (default: the Git root of the current directory)')
    .option('--only <parts>', 'run only some of schema,permissions,release')
    .option('--dry-run', 'print the plan per connection; change nothing')
    .option('--force', 'apply destructive schema changes (on a terminal, after showing them and asking)')
    .option('--mode <mode>', 'how schema changes run: transactional (each connection in one transaction), two-phase (all connections commit together), online (no long locks; not atomic); default: the environment\'s spec.applyMode')
    .option('--yes', 'answer yes to the confirmation of destructive steps (needed with --force only on a terminal)')
    .option('--timeout <seconds>', 'how long to wait for the operator', '120')
    .option('--github-repository <owner/name>', 'report the outcome per environment as commit statuses on this GitHub repository (with --github-token-secret)')
    .option('--github-token-secret <secret/key>', 'a Secret in the project namespace holding the GitHub token for commit statuses');
  addEmitOptions(apply).action(
    run(async (flags) => {
      const session = new Session(flags);
      const project = session.requireProject();
      const envName = session.requireEnv();
      const only = parseOnly(flags.only);
      const mode = parseMode(flags.mode);
      const repo = path.resolve(String(flags.repo ?? contextRoot()));
      // Loaded here, not at start-up: the schema compilers are the heaviest part of stk.
      const [{ readRepoAtRef }, { buildRelease }] = await Promise.all([import('../../core/release/source.ts'), import('../../core/release/build.ts')]);
      const snapshot = await readRepoAtRef(repo, String(flags.ref));
      const built = buildRelease(snapshot, { project, repo });
      const github = gitHubReporting(flags);
      const dir = await emitTarget(flags);
      if (dir) return emitApply(dir, flags, { project, envName, built, github });
      const client = await session.client();
      const namespace = await namespaceOfProject(client, project);
      if (!(await client.find<Env>(Kinds.Environment, envName, namespace))) throw new NotFoundError(`environment ${envName} does not exist in project ${project}`);
      await checkConnections(client, namespace, envName, built);
      const created = await ensureRelease(client, namespace, built, github);

      if (flags.dryRun) {
        try {
          const { outcome } = await requestEnvironmentChange(client, namespace, envName, { action: 'plan', release: built.id, ...(mode ? { mode } : {}) }, { setDesired: false, timeoutMs: timeoutMs(flags) });
          if (outcome.outcome === 'Failed') throw outcomeError(outcome);
          if (flags.json) return printJson({ releaseId: built.id, ref: built.content.ref, dryRun: true, plans: outcome.plans ?? [] });
          println(`dry run: release ${built.id} (ref ${built.content.ref.slice(0, 12)}) for ${project}/${envName}; nothing changed`);
          printPlans(outcome);
          return;
        } finally {
          if (created) await client.delete(Kinds.Release, built.id, namespace);
        }
      }

      const movesPointer = !only || only.includes('release');
      const interactive = !flags.json && isInteractive();
      const title = `release ${built.id} (ref ${built.content.ref.slice(0, 12)}) for ${project}/${envName}`;
      const request = (force: boolean) => ({ action: 'apply' as const, release: built.id, ...(only ? { only } : {}), ...(force ? { force: true } : {}), ...(mode ? { mode } : {}) });
      const wait = { setDesired: movesPointer, timeoutMs: timeoutMs(flags) };

      if (!interactive) {
        const { outcome, env } = await requestEnvironmentChange(client, namespace, envName, request(Boolean(flags.force)), wait);
        const steps = env.status?.steps ?? [];
        const connections = env.status?.connections ?? [];
        if (flags.json) {
          printJson({ releaseId: built.id, ref: built.content.ref, outcome: outcome.outcome, reason: outcome.reason ?? null, steps, connections, plans: outcome.plans ?? [], drift: outcome.drift ?? [] });
        } else {
          println(title);
          printPlans(outcome);
          for (const s of steps) println(stepLine(s));
          for (const c of connections) println(connectionLine(c));
        }
        if (outcome.outcome === 'Failed') throw refusal(outcome);
        if (!flags.json) println(`releaseId=${built.id}`);
        return;
      }

      // On a terminal: destructive steps are shown and confirmed before they run.
      const ui = await import('../ui/render.tsx');
      let force = Boolean(flags.force);
      if (force && !flags.yes) {
        const { outcome } = await requestEnvironmentChange(client, namespace, envName, { action: 'plan', release: built.id }, { setDesired: false, timeoutMs: timeoutMs(flags) });
        if (outcome.outcome === 'Failed') throw outcomeError(outcome);
        if (hasDestructiveSteps(outcome.plans) && !(await ui.renderPlanConfirm(outcome.plans ?? [], 'Apply these destructive steps?'))) throw cancelled();
      }
      let outcome = await applyWithLivePipeline(ui, client, namespace, envName, title, request(force), wait);
      if (outcome.outcome === 'Failed' && outcome.reason === 'DestructiveChange' && !force) {
        if (!(await ui.renderPlanConfirm(outcome.plans ?? [], 'The plan has destructive steps. Apply them (as --force)?'))) throw refusal(outcome);
        force = true;
        outcome = await applyWithLivePipeline(ui, client, namespace, envName, title, request(force), wait);
      }
      if (outcome.outcome === 'Failed') throw outcomeError(outcome);
      println(`releaseId=${built.id}`);
    }),
  );

  const release = program.command('release').description('releases: list, show, current, promote, rollback');

  release
    .command('list')
    .description('recent releases of a project; with --env, that environment\'s history')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment: show its history')
    .option('--limit <n>', 'at most this many', '20')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const project = session.requireProject();
        const client = await session.client();
        const namespace = await namespaceOfProject(client, project);
        const limit = Number(flags.limit);
        const envs = (await client.list<Env>(Kinds.Environment, { namespace })).items;
        const envName = session.settings.env;
        if (envName && flags.env !== undefined) {
          const env = envs.find((e) => e.metadata.name === envName);
          if (!env) throw new NotFoundError(`environment ${envName} does not exist in project ${project}`);
          const rows = (env.status?.history ?? []).slice(0, limit).map((h) => ({ release: h.release, ref: h.ref ?? '', action: h.action, at: h.at, current: h.release === env.status?.currentRelease }));
          if (flags.json) return printJson({ env: envName, current: env.status?.currentRelease ?? null, history: rows });
          // Plain output carries no timestamps (DESIGN §5); `--json` has them.
          println(formatTable(['RELEASE', 'REF', 'ACTION', 'CURRENT'], rows.map((r) => [r.release, r.ref.slice(0, 12), r.action, r.current ? '*' : ''])));
          return;
        }
        const releases = (await client.list<Rel>(Kinds.Release, { namespace })).items
          .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name))
          .slice(0, limit);
        const serving = (id: string) => envs.filter((e) => e.status?.currentRelease === id).map((e) => e.metadata.name).sort();
        const rows = releases.map((r) => ({ release: r.metadata.name, ref: r.spec.ref, created: r.metadata.creationTimestamp ?? '', serving: serving(r.metadata.name) }));
        if (flags.json) return printJson(rows);
        println(formatTable(['RELEASE', 'REF', 'SERVING'], rows.map((r) => [r.release, r.ref.slice(0, 12), r.serving.join(',') || '-'])));
      }),
    );

  release
    .command('show')
    .description('one release: id, ref, source, created, its tables per connection, and which environments serve or served it')
    .argument('[id]', 'release id')
    .option('--release-id <id>', 'release id (instead of the argument)')
    .option('--project <project>', 'project (default: context)')
    .action(
      run(async (flags, [arg]) => {
        const given = flags.releaseId === undefined ? undefined : String(flags.releaseId);
        if ((arg === undefined) === (given === undefined)) throw new UsageError('pass the release id once: `stk release show <id>` or `stk release show --release-id <id>`');
        const id = arg ?? given;
        const session = new Session(flags);
        const project = session.requireProject();
        const client = await session.client();
        const namespace = await namespaceOfProject(client, project);
        const rel = await client.find<Rel>(Kinds.Release, String(id), namespace);
        if (!rel) throw new NotFoundError(`release ${id} does not exist in project ${project}`, { reason: 'ReleaseNotFound', hint: 'list releases with `stk release list`' });
        const envs = (await client.list<Env>(Kinds.Environment, { namespace })).items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
        const serving = envs.filter((e) => e.status?.currentRelease === rel.metadata.name).map((e) => e.metadata.name);
        const served = envs.filter((e) => (e.status?.history ?? []).some((h) => h.release === rel.metadata.name)).map((e) => e.metadata.name);
        const { schema } = await readReleaseContent(client, rel);
        const tables = Object.fromEntries(Object.keys(schema).sort().map((c) => [c, Object.keys(schema[c]?.tables ?? {}).sort()]));
        const content = rel.spec.content;
        const storage = content ? { format: 'chunked', chunks: content.chunks.length, bytes: content.chunks.reduce((n, c) => n + c.size, 0) } : { format: 'inline' };
        const out = { releaseId: rel.metadata.name, ref: rel.spec.ref, repo: rel.spec.repo ?? null, created: rel.metadata.creationTimestamp ?? null, storage, tables, serving, served };
        if (flags.json) return printJson(out);
        println(`releaseId=${out.releaseId}`);
        println(`ref=${out.ref}`);
        println(`repo=${out.repo ?? '-'}`);
        println(`created=${out.created ?? '-'}`);
        if (content) println(`stored=chunked: ${content.chunks.length} ConfigMap(s), ${content.chunks.reduce((n, c) => n + c.size, 0)} bytes compressed`);
        for (const [connection, names] of Object.entries(tables)) println(`tables ${connection}: ${names.join(', ') || '-'}`);
        println(`serving: ${serving.join(', ') || '-'}`);
        println(`served: ${served.join(', ') || '-'}`);
      }),
    );

  release
    .command('current')
    .description('the release an environment serves')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment (default: context)')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const project = session.requireProject();
        const envName = session.requireEnv();
        const client = await session.client();
        const namespace = await namespaceOfProject(client, project);
        const env = await client.find<Env>(Kinds.Environment, envName, namespace);
        if (!env) throw new NotFoundError(`environment ${envName} does not exist in project ${project}`);
        const id = env.status?.currentRelease;
        const rel = id ? await client.find<Rel>(Kinds.Release, id, namespace) : undefined;
        const since = env.status?.history?.find((h) => h.release === id);
        const out = { env: envName, releaseId: id ?? null, ref: rel?.spec.ref ?? null, since: since?.at ?? null, action: since?.action ?? null };
        if (flags.json) return printJson(out);
        if (!id) return println(`environment ${envName} serves no release yet`);
        println(`releaseId=${id}`);
        println(`ref=${out.ref ?? '-'}`);
        println(`since=${out.since ?? '-'} (${out.action ?? '-'})`);
      }),
    );

  const promote = release
    .command('promote')
    .description("point an environment at another environment's current release (or an explicit id); no DDL: its databases must already satisfy it")
    .option('--project <project>', 'project (default: context)')
    .option('--from <env>', 'source environment')
    .option('--release-id <id>', 'release to promote instead of the source environment\'s current one')
    .requiredOption('--to <env>', 'target environment')
    .option('--timeout <seconds>', 'how long to wait for the operator', '120');
  addEmitOptions(promote).action(
    run(async (flags) => {
      const session = new Session(flags);
      const project = session.requireProject();
      let id = flags.releaseId as string | undefined;
      if ((id === undefined) === (flags.from === undefined)) throw new UsageError('pass exactly one of --from <env> or --release-id <id>');
      const dir = await emitTarget(flags);
      if (dir) {
        // The directory is the desired state: promote what the source environment is set to there.
        if (flags.from !== undefined) id = dir.environment(project, String(flags.from)).spec.release;
        if (!id) throw new ConflictError(`environment ${String(flags.from)} names no release in ${dir.root}: nothing to promote`);
        return emitPointer(dir, flags, { project, envName: String(flags.to), release: id, action: 'promote' });
      }
      const client = await session.client();
      const namespace = await namespaceOfProject(client, project);
      if (flags.from !== undefined) {
        const source = await client.find<Env>(Kinds.Environment, String(flags.from), namespace);
        if (!source) throw new NotFoundError(`environment ${String(flags.from)} does not exist in project ${project}`);
        id = source.status?.currentRelease;
        if (!id) throw new ConflictError(`environment ${String(flags.from)} serves no release yet: nothing to promote`);
      }
      if (!(await client.find<Rel>(Kinds.Release, id!, namespace))) throw new NotFoundError(`release ${id} does not exist in project ${project}`, { reason: 'ReleaseNotFound', hint: 'list releases with `stk release list`' });
      const { outcome } = await requestEnvironmentChange(client, namespace, String(flags.to), { action: 'promote', release: id! }, { setDesired: true, timeoutMs: timeoutMs(flags) });
      if (outcome.outcome === 'Failed') throw outcomeError(outcome);
      if (flags.json) return printJson({ env: flags.to, releaseId: id });
      println(`environment ${String(flags.to)} now serves ${id}`);
      println(`releaseId=${id}`);
    }),
  );

  const rollback = release
    .command('rollback')
    .description('point an environment back at a release it served before; no DDL is undone')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment (default: context)')
    .option('--to-release-id <id>', 'a release from the environment\'s history (required)')
    .option('--to <id>', 'the same as --to-release-id (the form the operator flows use)')
    .option('--timeout <seconds>', 'how long to wait for the operator', '120');
  addEmitOptions(rollback).action(
    run(async (flags) => {
      const session = new Session(flags);
      if (flags.toReleaseId !== undefined && flags.to !== undefined && flags.toReleaseId !== flags.to) {
        throw new UsageError('--to and --to-release-id name different releases', { hint: 'pass one of them' });
      }
      const given = flags.toReleaseId ?? flags.to;
      if (given === undefined) throw new UsageError('which release? pass --to-release-id <id>', { hint: 'see the history with `stk release list --env <env>`' });
      const project = session.requireProject();
      const envName = session.requireEnv();
      const id = String(given);
      const dir = await emitTarget(flags);
      // Synced, a pointer back to a release the environment served is a rollback: no DDL.
      if (dir) return emitPointer(dir, flags, { project, envName, release: id, action: 'rollback' });
      const client = await session.client();
      const namespace = await namespaceOfProject(client, project);
      if (!(await client.find<Rel>(Kinds.Release, id, namespace))) throw new NotFoundError(`release ${id} does not exist in project ${project}`, { reason: 'ReleaseNotFound', hint: `see the history with \`stk release list --env ${envName}\`` });
      const { outcome } = await requestEnvironmentChange(client, namespace, envName, { action: 'rollback', release: id }, { setDesired: true, timeoutMs: timeoutMs(flags) });
      if (outcome.outcome === 'Failed') throw outcomeError(outcome);
      if (flags.json) return printJson({ env: envName, releaseId: id });
      println(`environment ${envName} rolled back to ${id}`);
      println(`releaseId=${id}`);
    }),
  );
}
