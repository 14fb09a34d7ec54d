import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { findCondition } from '../../core/api/conditions.ts';
import { API_VERSION, Kinds, Labels, type InfraHost } from '../../core/api/resources.ts';
import { ConflictError, ForbiddenError, PartialFailureError, UnavailableError, UsageError, ValidationError, type FieldError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { waitForObject } from '../../core/kube/wait.ts';
import { gitRootOf, readFileAtRef } from '../../core/release/source.ts';
import { HOSTS_FILE_PATH, loadDesiredHosts, toInfraHostSpec, type DesiredHost, type SecretKeyRef } from '../../core/infra/hosts.ts';
import {
  ANNOTATION_RECONCILE_REQUEST,
  ANNOTATION_RUN,
  bootstrapColumn,
  exitCodeFor,
  hostOutcome,
  parseRun,
  type HostOutcome,
} from '../../core/infra/run.ts';
import { formatTable, printJson, println } from '../output.ts';
import { run, type Flags } from '../runner.ts';
import { Session } from '../session.ts';
import { gaveUp, hostProgress } from '../ui/components/InfraHostsStore.ts';
import { isInteractive } from '../ui/terminal.ts';
import { namespaceOfProject } from './project.ts';

/**
 * `stk infra up | status | down`: the hosts of `infra/hosts.yaml` as InfraHost resources.
 *
 * `up` reads the file from a Git ref (never the working tree), checks it and the Secrets it
 * names, writes one InfraHost per host by server-side apply, and waits (by watch) for the
 * operator to answer this run of each host (core/infra/run.ts). Output is a table sorted by
 * host with nothing in it that changes between identical runs; on a terminal, live rows per host
 * (fed by the same watch) come first, then the same table. Exit codes (DESIGN §5): 0 every
 * host ready; 10 some hosts failed bootstrap while others are ready; 1 invalid file, missing
 * credentials or a key the cloud does not know; 2 the cluster refused the resources; 3 the cloud
 * API failed, bootstrap could not run anywhere, or no answer came in time.
 */

const FIELD_MANAGER = 'stk';
/** The Git commit the resource was last written from (for people reading the resource). */
const ANNOTATION_SOURCE_COMMIT = 'santokit.io/source-commit';
const HOST_LABEL = 'santokit.io/host';

type Obj = InfraHost & KubeObject;

export function registerInfraCommands(program: Command): void {
  const infra = program.command('infra').description('cloud hosts from infra/hosts.yaml (InfraHost resources: a droplet each, bootstrapped over SSH)');

  infra
    .command('up')
    .description('create or update the hosts of infra/hosts.yaml at a Git ref, wait for them, print one line per host')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'only this environment (default: context, else every environment in the file)')
    .option('--ref <ref>', 'Git ref to read infra/hosts.yaml from', 'HEAD')
    .option('--repo <path>', 'the repository (default: the Git root of the current directory)')
    .option('--prune', 'delete hosts of the selected environments that the file no longer lists')
    .option('--timeout <seconds>', 'how long to wait for the hosts', '900')
    .action(run((flags) => up(flags)));

  infra
    .command('status')
    .description('show the hosts of a project as the operator last reported them')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'only this environment (default: context, else all)')
    .action(run((flags) => status(flags)));

  infra
    .command('down')
    .description('delete hosts (droplets go as their deletionPolicy says) and wait until they are gone')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'only this environment (default: context, else all)')
    .option('--host <host>', 'only this host')
    .option('--timeout <seconds>', 'how long to wait for the deletion', '600')
    .action(run((flags) => down(flags)));
}

// ---------------------------------------------------------------------------------------------

interface HostReport {
  readonly environment: string;
  readonly host: string;
  readonly name: string;
  readonly droplet: string | null;
  readonly ip: string | null;
  readonly action: string | null;
  readonly bootstrap: string;
  readonly phase: string | null;
  readonly ready: string;
  readonly reason: string | null;
  readonly message: string | null;
  readonly steps: Record<string, string>;
  readonly drift: string[];
  readonly outcome: HostOutcome;
}

async function up(flags: Flags): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  const environment = session.settings.env;
  const timeoutMs = seconds(flags.timeout, '--timeout');
  const repo = typeof flags.repo === 'string' ? flags.repo : await gitRootOf(process.cwd());
  if (repo === undefined) throw new UsageError('the current directory is not in a Git repository', { hint: 'run stk in your repository, or pass --repo <path>' });
  const ref = typeof flags.ref === 'string' ? flags.ref : 'HEAD';

  const file = await readFileAtRef(repo, ref, HOSTS_FILE_PATH);
  if (file.text === undefined) {
    throw new ValidationError(`${HOSTS_FILE_PATH} does not exist at ${ref} (commit ${file.commit.slice(0, 12)})`, [], { hint: 'commit the file (see config/infra/hosts.yaml for an example), or pass --ref' });
  }
  const desired = loadDesiredHosts(file.text, { project, ...(environment === undefined ? {} : { environment }) });

  const client = await session.client();
  const namespace = await namespaceOfProject(client, project);
  await checkSecrets(client, namespace, desired);

  const { items: existing } = await client.list<Obj>(Kinds.InfraHost, { namespace, labelSelector: `${Labels.project}=${project}` });
  for (const h of desired) {
    const current = existing.find((e) => e.metadata.name === h.resourceName);
    if (current?.metadata.deletionTimestamp !== undefined) {
      throw new ConflictError(`host ${h.environment}/${h.host} is being deleted`, { hint: 'wait for `stk infra down` to finish, then run `stk infra up` again' });
    }
  }

  // One id per run: the operator answers it in the run record; never printed.
  const requestId = randomBytes(8).toString('hex');
  const applied: Array<{ host: DesiredHost; generation: number }> = [];
  for (const h of desired) {
    const obj = await applyHost(client, namespace, h, requestId, file.commit);
    applied.push({ host: h, generation: obj.metadata.generation ?? 0 });
  }

  const wanted = new Set(desired.map((h) => h.resourceName));
  const stale = existing
    .filter((e) => e.metadata.labels?.[Labels.managedBy] === FIELD_MANAGER && !wanted.has(e.metadata.name))
    .filter((e) => environment === undefined || e.spec.environment === environment)
    .sort((a, b) => compare(a.metadata.name, b.metadata.name));
  if (flags.prune !== true) {
    for (const e of stale) {
      process.stderr.write(`stk: ${e.spec.environment}/${e.spec.host} is not in ${HOSTS_FILE_PATH} at ${ref}; left in place (pass --prune to delete it)\n`);
    }
  }

  const multiEnv = new Set(desired.map((h) => h.environment)).size > 1;
  const label = (r: { environment: string; host: string }) => (multiEnv ? `${r.environment}/${r.host}` : r.host);

  // On a terminal, one live row per host; React and Ink load only here (`stk --help` stays light).
  const view =
    !flags.json && isInteractive()
      ? (await import('../ui/render.tsx')).renderInfraHosts(
          `stk infra up: ${desired.length} host${desired.length === 1 ? '' : 's'} of ${project} at ${ref} (commit ${file.commit.slice(0, 12)})`,
          desired.map((h) => ({ key: h.resourceName, label: label(h) })),
        )
      : undefined;
  let reports: HostReport[];
  let pruned: DeleteResult[];
  try {
    [reports, pruned] = await Promise.all([
      Promise.all(
        applied.map(async ({ host, generation }) => {
          const run = { requestId, generation };
          const onChange = view === undefined ? undefined : (obj: Obj) => view.update(hostProgress(obj, run));
          const report = await waitForRun(client, namespace, host, requestId, generation, timeoutMs, onChange);
          if (view !== undefined && report.outcome.kind === 'pending') {
            view.update(gaveUp(view.last(host.resourceName), host.resourceName, { code: report.outcome.reason, message: report.outcome.message }));
          }
          return report;
        }),
      ),
      flags.prune === true ? Promise.all(stale.map((e) => deleteAndWait(client, e, timeoutMs))) : Promise.resolve([]),
    ]);
  } finally {
    await view?.finish();
  }

  const sorted = [...reports].sort((a, b) => compare(label(a), label(b)));
  if (flags.json) {
    printJson({
      project,
      commit: file.commit,
      hosts: sorted.map(({ outcome: _outcome, ...r }) => r),
      ...(flags.prune === true ? { pruned } : {}),
    });
  } else {
    println(formatTable(['HOST', 'DROPLET', 'IP', 'ACTION', 'BOOTSTRAP'], sorted.map((r) => [label(r), r.droplet ?? '-', r.ip ?? '-', r.action ?? '-', r.bootstrap])));
    for (const p of pruned) println(`pruned ${p.environment}/${p.host}: ${p.result}`);
    for (const r of sorted) for (const d of r.drift) process.stderr.write(`stk: ${label(r)}: drift: ${d}\n`);
  }

  const code = exitCodeFor(sorted.map((r) => r.outcome));
  const failures = sorted.filter((r) => r.outcome.kind !== 'ready').map((r) => `  - ${label(r)}: ${describeOutcome(r.outcome)}`);
  const summary = `${failures.length} of ${sorted.length} hosts not ready:\n${failures.join('\n')}`;
  switch (code) {
    case 0:
      return;
    case 1:
      throw new ValidationError(summary, [], { hint: 'fix the input named above and run `stk infra up` again' });
    case 10:
      throw new PartialFailureError(summary, { hint: 'run `stk infra up` again to retry bootstrap; `stk infra status` shows every host' });
    default:
      throw new UnavailableError(summary, { retryable: false, reason: 'HostsNotReady', hint: '`kubectl describe infrahost -n <namespace> <name>` shows the conditions and events' });
  }
}

async function status(flags: Flags): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  const environment = session.settings.env;
  const client = await session.client();
  const namespace = await namespaceOfProject(client, project);
  const hosts = (await listHosts(client, namespace, project, environment)).map(reportOf);
  const multiEnv = new Set(hosts.map((r) => r.environment)).size > 1;
  const label = (r: HostReport) => (multiEnv ? `${r.environment}/${r.host}` : r.host);
  const sorted = hosts.sort((a, b) => compare(label(a), label(b)));
  if (flags.json) return printJson(sorted.map(({ outcome: _outcome, ...r }) => r));
  println(
    formatTable(
      ['HOST', 'DROPLET', 'IP', 'PHASE', 'ACTION', 'BOOTSTRAP', 'READY'],
      sorted.map((r) => [label(r), r.droplet ?? '-', r.ip ?? '-', r.phase ?? '-', r.action ?? '-', r.bootstrap, r.ready]),
    ),
  );
}

async function down(flags: Flags): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  const environment = session.settings.env;
  const host = typeof flags.host === 'string' ? flags.host : undefined;
  const timeoutMs = seconds(flags.timeout, '--timeout');
  const client = await session.client();
  const namespace = await namespaceOfProject(client, project);
  const targets = (await listHosts(client, namespace, project, environment)).filter((h) => host === undefined || h.spec.host === host);
  if (targets.length === 0) {
    const what = [environment === undefined ? undefined : `environment ${environment}`, host === undefined ? undefined : `host ${host}`].filter(Boolean).join(', ');
    if (flags.json) return printJson([]);
    println(`no hosts to delete in project ${project}${what === '' ? '' : ` (${what})`}`);
    return;
  }
  const results = await Promise.all(targets.map((t) => deleteAndWait(client, t, timeoutMs)));
  const multiEnv = new Set(results.map((r) => r.environment)).size > 1;
  const label = (r: { environment: string; host: string }) => (multiEnv ? `${r.environment}/${r.host}` : r.host);
  const sorted = results.sort((a, b) => compare(label(a), label(b)));
  if (flags.json) return printJson(sorted);
  println(formatTable(['HOST', 'DROPLET', 'RESULT'], sorted.map((r) => [label(r), r.droplet ?? '-', r.result])));
}

// ---------------------------------------------------------------------------------------------

/** Every Secret the hosts name must exist with its key (exit 1 otherwise). Values are never printed. */
async function checkSecrets(client: KubeClient, namespace: string, hosts: readonly DesiredHost[]): Promise<void> {
  const refs = new Map<string, { ref: SecretKeyRef; what: string }>();
  const add = (ref: SecretKeyRef, what: string) => refs.set(`${ref.name}\0${ref.key}`, { ref, what });
  for (const h of hosts) {
    add(h.credentialsSecretRef, 'the DigitalOcean token (credentialsSecretRef)');
    if ('privateKeySecretRef' in h.sshKey) add(h.sshKey.privateKeySecretRef, 'the SSH private key (sshKey.privateKeySecretRef)');
    if (h.bootstrap.tailscale !== undefined) add(h.bootstrap.tailscale.authKeySecretRef, 'the Tailscale auth key (bootstrap.tailscale.authKeySecretRef)');
  }
  const problems: FieldError[] = [];
  for (const { ref, what } of [...refs.values()].sort((a, b) => compare(a.ref.name, b.ref.name) || compare(a.ref.key, b.ref.key))) {
    let secret: (KubeObject & { data?: Record<string, string> }) | undefined;
    try {
      secret = await client.find(Kinds.Secret, ref.name, namespace);
    } catch (err) {
      if (err instanceof ForbiddenError) {
        process.stderr.write(`stk: may not read Secrets in ${namespace}; the operator will check ${what} itself\n`);
        return;
      }
      throw err;
    }
    const value = secret?.data?.[ref.key];
    if (secret === undefined) problems.push({ path: `secret/${ref.name}`, message: `${what}: Secret ${ref.name} does not exist in namespace ${namespace}` });
    else if (value === undefined || Buffer.from(value, 'base64').toString('utf8').trim() === '') problems.push({ path: `secret/${ref.name}`, message: `${what}: Secret ${ref.name} has no (or an empty) key "${ref.key}"` });
  }
  if (problems.length > 0) {
    throw new ValidationError('missing credentials: nothing was written', problems, { reason: 'CredentialsMissing', hint: `create them in namespace ${namespace}, e.g. kubectl create secret generic <name> -n ${namespace} --from-literal=<key>=<value>` });
  }
}

async function applyHost(client: KubeClient, namespace: string, h: DesiredHost, requestId: string, commit: string): Promise<Obj> {
  const obj: Obj = {
    apiVersion: API_VERSION,
    kind: 'InfraHost',
    metadata: {
      name: h.resourceName,
      namespace,
      labels: { [Labels.project]: h.project, [Labels.environment]: h.environment, [HOST_LABEL]: h.host, [Labels.managedBy]: FIELD_MANAGER },
      annotations: { [ANNOTATION_RECONCILE_REQUEST]: requestId, [ANNOTATION_SOURCE_COMMIT]: commit },
    },
    spec: structuredClone(toInfraHostSpec(h)) as InfraHost['spec'],
  };
  try {
    return await client.apply<Obj>(Kinds.InfraHost, obj, { fieldManager: FIELD_MANAGER, force: true });
  } catch (err) {
    if (err instanceof ForbiddenError) throw new ForbiddenError(`forbidden: you may not write InfraHosts in ${namespace}: ${err.message}`);
    // The API server refused the object (schema, an immutable field): the cluster rejected it.
    if (err instanceof ValidationError) throw new ConflictError(`the cluster rejected InfraHost ${h.resourceName}: ${err.message}`, { reason: 'Rejected' });
    throw err;
  }
}

/**
 * Waits for the operator to answer run `requestId` of one host (its run record says handled);
 * `onChange` sees every version of the host the watch delivers on the way.
 */
async function waitForRun(
  client: KubeClient,
  namespace: string,
  h: DesiredHost,
  requestId: string,
  generation: number,
  timeoutMs: number,
  onChange?: (obj: Obj) => void,
): Promise<HostReport> {
  let last: Obj | undefined;
  try {
    last = await waitForObject<Obj>(
      client,
      Kinds.InfraHost,
      h.resourceName,
      namespace,
      (obj) => {
        if (obj === undefined) throw new ConflictError(`InfraHost ${h.resourceName} was deleted while stk was waiting for it`);
        last = obj;
        onChange?.(obj);
        const record = parseRun(obj.metadata.annotations?.[ANNOTATION_RUN]);
        return record?.request === requestId && record.handled === true && record.generation >= generation;
      },
      { timeoutMs, what: `host ${h.environment}/${h.host} (is the operator running?)` },
    );
  } catch (err) {
    if (!(err instanceof UnavailableError) || err.reason !== 'Timeout') throw err;
    const report = last === undefined ? undefined : reportOf(last);
    const reason = report?.reason ?? 'Timeout';
    const message = `no answer within ${Math.round(timeoutMs / 1000)} s (last: ${report?.phase ?? 'not reconciled'}${report?.message ? `: ${report.message}` : ''})`;
    return { ...(report ?? emptyReport(h)), bootstrap: 'pending', outcome: { kind: 'pending', reason, message } };
  }
  return reportOf(last!);
}

interface DeleteResult {
  readonly environment: string;
  readonly host: string;
  readonly droplet: string | null;
  readonly result: string;
}

/**
 * Deletes one InfraHost and waits until the finalizer let it go. The deletion is judged by the
 * object (gone: done) and the finalizer's own condition `Deleted` (False: it needs a person, the
 * wait ends); a `Stalled` left from provisioning says nothing about the deletion.
 */
async function deleteAndWait(client: KubeClient, obj: Obj, timeoutMs: number): Promise<DeleteResult> {
  const namespace = obj.metadata.namespace ?? '';
  let last: Obj | undefined = obj;
  await client.delete(Kinds.InfraHost, obj.metadata.name, namespace);
  await waitForObject<Obj>(
    client,
    Kinds.InfraHost,
    obj.metadata.name,
    namespace,
    (current) => {
      if (current === undefined) return true;
      last = current;
      const deleted = findCondition(current.status, 'Deleted');
      if (current.metadata.deletionTimestamp !== undefined && deleted?.status === 'False') {
        throw new UnavailableError(`cannot delete host ${obj.spec.environment}/${obj.spec.host}: ${deleted.message}`, { reason: deleted.reason, retryable: false });
      }
      return false;
    },
    { timeoutMs, what: `host ${obj.spec.environment}/${obj.spec.host} to be deleted (is the operator running?)` },
  );
  const droplet = last?.status?.providerId ?? null;
  const orphan = (last?.spec.deletionPolicy ?? 'Delete') === 'Orphan';
  return {
    environment: obj.spec.environment,
    host: obj.spec.host,
    droplet,
    result: droplet === null ? 'removed (no droplet)' : orphan ? 'orphaned (droplet left running)' : 'deleted',
  };
}

/** The InfraHosts of a project (and environment), by their spec: resources written by hand or GitOps may lack stk's labels. */
async function listHosts(client: KubeClient, namespace: string, project: string, environment: string | undefined): Promise<Obj[]> {
  const { items } = await client.list<Obj>(Kinds.InfraHost, { namespace });
  return items.filter((o) => o.spec.project === project && (environment === undefined || o.spec.environment === environment));
}

function reportOf(obj: Obj): HostReport {
  const s = obj.status;
  const outcome = hostOutcome(s);
  const ready = findCondition(s, 'Ready');
  return {
    environment: obj.spec.environment,
    host: obj.spec.host,
    name: obj.metadata.name,
    droplet: s?.providerId ?? null,
    ip: s?.publicIPv4 ?? null,
    action: s?.providerId === undefined ? null : (s.action ?? null),
    bootstrap: bootstrapColumn(outcome),
    phase: s?.phase ?? null,
    ready: ready?.status ?? 'Unknown',
    reason: ready?.reason ?? null,
    message: ready?.message ?? null,
    steps: { ...(s?.steps ?? {}) },
    drift: [...(s?.drift ?? [])],
    outcome,
  };
}

function emptyReport(h: DesiredHost): HostReport {
  return {
    environment: h.environment,
    host: h.host,
    name: h.resourceName,
    droplet: null,
    ip: null,
    action: null,
    bootstrap: 'pending',
    phase: null,
    ready: 'Unknown',
    reason: null,
    message: null,
    steps: {},
    drift: [],
    outcome: { kind: 'pending', reason: 'Timeout', message: 'not reconciled' },
  };
}

function describeOutcome(o: HostOutcome): string {
  switch (o.kind) {
    case 'ready':
      return 'ready';
    case 'bootstrapFailed':
      return o.message;
    case 'configInvalid':
      return `config_invalid: ${o.message}`;
    case 'cloudFailed':
      return `${o.reason}: ${o.message}`;
    case 'pending':
      return `${o.reason}: ${o.message}`;
  }
}

function seconds(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of seconds`);
  return n * 1000;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
