import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { findCondition } from '../../core/api/conditions.ts';
import { Annotations, Kinds, type Connection } from '../../core/api/resources.ts';
import { ForbiddenError, NotFoundError, UnavailableError, UsageError, ValidationError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { waitForObject } from '../../core/kube/wait.ts';
import { connectionBinding, connectionObjectName, plainConnectionObjectName, seal } from '../../core/sealing.ts';
import { addEmitOptions, emitTarget } from '../emit.ts';
import { connectionManifest } from '../manifests.ts';
import { formatTable, printJson, println } from '../output.ts';
import { run, type Flags } from '../runner.ts';
import { Session } from '../session.ts';
import { namespaceOfProject } from './project.ts';

const FIELD_MANAGER = 'stk';
const SEALING_CONFIGMAP = 'santokit-sealing-cert';

export { connectionObjectName };

/**
 * The object name of an env's connection in the cluster: the existing Connection's (found by its
 * spec, so objects named before names became collision-free keep working), else the new name.
 */
async function existingConnection(client: KubeClient, namespace: string, env: string, name: string): Promise<(Connection & KubeObject) | undefined> {
  for (const candidate of new Set([connectionObjectName(env, name), plainConnectionObjectName(env, name)])) {
    const found = await client.find<Connection & KubeObject>(Kinds.Connection, candidate, namespace);
    if (found && found.spec.environment === env && found.spec.name === name) return found;
  }
  return undefined;
}

/** The URL from --db-url, or from stdin with `--db-url -` (keeps it out of shell history and `ps`). */
function readDbUrl(flags: Flags): string | undefined {
  const given = flags.dbUrl as string | undefined;
  if (given === undefined) return undefined;
  const url = given === '-' ? fs.readFileSync(0, 'utf8').trim() : given;
  if (!/^postgres(ql)?:\/\/[^/\s]+/.test(url)) throw new ValidationError('--db-url must be a postgres:// URL', [], { hint: 'postgres://user:password@host:5432/database' });
  return url;
}

async function fetchSealingCert(client: KubeClient, operatorNamespace: string): Promise<string> {
  try {
    const cm = await client.get<KubeObject & { data?: Record<string, string> }>(Kinds.ConfigMap, SEALING_CONFIGMAP, operatorNamespace);
    const cert = cm.data?.['tls.crt'];
    if (!cert) throw new NotFoundError('the sealing certificate ConfigMap is empty');
    return cert;
  } catch (err) {
    if (err instanceof NotFoundError) throw new UnavailableError(`the operator's sealing certificate (${operatorNamespace}/${SEALING_CONFIGMAP}) is not published`, { reason: 'SealingCertificateMissing', retryable: false, hint: 'is the operator installed and running? (--operator-namespace)' });
    throw err;
  }
}

function reachableOf(c: Connection): { status: string; reason: string; message: string } {
  const cond = findCondition(c.status, 'Reachable');
  return { status: cond?.status ?? 'Unknown', reason: cond?.reason ?? '-', message: cond?.message ?? 'not probed yet' };
}

async function writeConnection(flags: Flags, mode: 'set' | 'rotate'): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  const env = session.requireEnv();
  const name = (flags.name as string | undefined) ?? session.settings.connection ?? 'main';
  const engine = (flags.engine as string | undefined) ?? 'postgres';
  if (engine !== 'postgres') throw new ValidationError(`unsupported engine "${engine}"`, [], { hint: 'the only engine is postgres' });
  const url = readDbUrl(flags);
  const secretRef = flags.secretRef as string | undefined;
  if ((url === undefined) === (secretRef === undefined)) throw new UsageError('pass exactly one of --db-url or --secret-ref <secret>/<key>');

  const dir = await emitTarget(flags);
  // With --emit the cluster is asked only for the sealing certificate.
  const namespace = dir ? dir.namespaceOf(project) : await namespaceOfProject(await session.client(), project);
  let objectName = connectionObjectName(env, name);
  if (dir) {
    dir.environment(project, env);
    // A file written before names became collision-free keeps its name.
    const plain = plainConnectionObjectName(env, name);
    const old = plain === objectName ? undefined : dir.read<Connection>(dir.connectionFile(project, plain));
    if (old?.spec.environment === env && old.spec.name === name) objectName = plain;
    if (mode === 'rotate' && !dir.read(dir.connectionFile(project, objectName))) throw new NotFoundError(`connection ${name} of ${project}/${env} is not in ${dir.root}`, { hint: 'write it with `stk connections set --emit`' });
  } else {
    const client = await session.client();
    const existing = await existingConnection(client, namespace, env, name);
    if (existing) objectName = existing.metadata.name;
    if (mode === 'rotate' && !existing) throw new NotFoundError(`connection ${name} does not exist in ${project}/${env}`, { hint: 'create it with `stk connections set`' });
    if (mode === 'set' && !(await client.find(Kinds.Environment, env, namespace))) throw new NotFoundError(`environment ${env} does not exist in project ${project}`, { hint: `create it with \`stk env create --project ${project} ${env}\`` });
  }

  let spec: Connection['spec'];
  if (url !== undefined) {
    const cert = await fetchSealingCert(await session.client(), String(flags.operatorNamespace ?? 'santokit-system'));
    spec = { project, environment: env, name, engine: 'postgres', sealedUrl: seal(cert, url, connectionBinding({ namespace, objectName, environment: env, name })) };
  } else {
    const [secret, key] = secretRef!.split('/');
    if (!secret || !key) throw new UsageError('--secret-ref must look like <secret>/<key>');
    spec = { project, environment: env, name, engine: 'postgres', secretRef: { name: secret, key } };
  }
  if (dir) {
    // The sealed URL is bound to this project namespace and object name: safe to commit.
    dir.write(dir.connectionFile(project, objectName), connectionManifest(objectName, namespace, spec));
    const published = await dir.publish(flags, { title: `santokit: connection ${name} of ${project}/${env}`, body: `Connection ${name} of ${project}/${env} (${url !== undefined ? 'sealed URL' : `secret ${secretRef}`}).`, branch: `santokit/connection-${project}-${objectName}` });
    return dir.report(flags, published);
  }
  const probe = randomBytes(6).toString('hex');
  try {
    // A JSON merge patch would keep the other URL field: replace the spec wholesale through apply.
    await (await session.client()).apply<Connection & KubeObject>(Kinds.Connection, connectionManifest(objectName, namespace, spec, { [Annotations.probe]: probe }), { fieldManager: FIELD_MANAGER, force: true });
  } catch (err) {
    if (err instanceof ForbiddenError) throw new ForbiddenError(`forbidden: you may not write connections in project ${project}: ${err.message}`);
    throw err;
  }
  if (flags.json) printJson({ project, env, name, engine, stored: url !== undefined ? 'sealed' : 'secretRef' });
  else println(`connection ${name} ${mode === 'set' ? 'saved' : 'rotated'} for ${project}/${env} (${url !== undefined ? 'URL sealed with the operator certificate' : `secret ${secretRef}`})`);
}

export function registerConnectionCommands(program: Command): void {
  const connections = program.command('connections').description('database connections of an environment');
  const target = (cmd: Command) => cmd.option('--project <project>', 'project (default: context)').option('--env <env>', 'environment (default: context)');

  addEmitOptions(
    target(connections.command('set'))
      .description('store a connection: the URL is sealed client-side and never printed again')
      .option('--name <name>', 'connection name (default: context, else main)')
      .option('--engine <engine>', 'database engine', 'postgres')
      .option('--db-url <url>', 'database URL; "-" reads it from stdin')
      .option('--secret-ref <secret/key>', 'use an existing Secret in the project namespace instead (labelled santokit.io/connection-secret=true)')
      .option('--operator-namespace <namespace>', 'namespace of the operator (sealing certificate)', 'santokit-system'),
  ).action(run((flags) => writeConnection(flags, 'set')));

  addEmitOptions(
    target(connections.command('rotate'))
      .description('replace the sealed URL (or the secret reference) of an existing connection')
      .option('--name <name>', 'connection name (default: context, else main)')
      .option('--db-url <url>', 'new database URL; "-" reads it from stdin')
      .option('--secret-ref <secret/key>', 'use an existing Secret instead (labelled santokit.io/connection-secret=true)')
      .option('--operator-namespace <namespace>', 'namespace of the operator (sealing certificate)', 'santokit-system'),
  ).action(run((flags) => writeConnection(flags, 'rotate')));

  target(connections.command('list'))
    .description('list connections: name, engine, target (no credentials) and reachability')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const project = session.requireProject();
        const env = session.requireEnv();
        const namespace = await namespaceOfProject(await session.client(), project);
        const { items } = await (await session.client()).list<Connection & KubeObject>(Kinds.Connection, { namespace });
        const rows = items
          .filter((c) => c.spec.environment === env)
          .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
          .map((c) => ({ name: c.spec.name, engine: c.spec.engine, target: c.status?.target ?? '-', reachable: reachableOf(c).status, reason: reachableOf(c).reason, lastTested: c.status?.lastTestedTime ?? null }));
        if (flags.json) return printJson(rows);
        println(formatTable(['NAME', 'ENGINE', 'TARGET', 'REACHABLE', 'REASON'], rows.map((r) => [r.name, r.engine, r.target, r.reachable, r.reason])));
      }),
    );

  target(connections.command('test'))
    .description('ask the operator for a fresh probe and wait for it: exit 0 when reachable and authenticated')
    .option('--name <name>', 'connection name (default: context, else main)')
    .option('--timeout <seconds>', 'how long to wait for the probe', '60')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const project = session.requireProject();
        const env = session.requireEnv();
        const name = (flags.name as string | undefined) ?? session.settings.connection ?? 'main';
        const client = await session.client();
        const namespace = await namespaceOfProject(client, project);
        const objectName = (await existingConnection(client, namespace, env, name))?.metadata.name ?? connectionObjectName(env, name);
        const probe = randomBytes(6).toString('hex');
        try {
          await client.patch(Kinds.Connection, objectName, namespace, { metadata: { annotations: { [Annotations.probe]: probe } } });
        } catch (err) {
          if (err instanceof NotFoundError) throw new NotFoundError(`connection ${name} does not exist in ${project}/${env}`, { hint: 'create it with `stk connections set`' });
          throw err;
        }
        const answered = await waitForObject<Connection & KubeObject>(client, Kinds.Connection, objectName, namespace, (c) => c?.status?.probe === probe, {
          timeoutMs: Number(flags.timeout) * 1000,
          what: `the operator to probe connection ${name} (is the operator running?)`,
        });
        const r = reachableOf(answered!);
        if (flags.json) printJson({ name, reachable: r.status === 'True', reason: r.reason, message: r.message, target: answered?.status?.target ?? null, testedAt: answered?.status?.lastTestedTime ?? null });
        if (r.status !== 'True') throw new UnavailableError(`connection ${name} failed: ${r.reason}: ${r.message}`, { reason: r.reason, retryable: false });
        if (!flags.json) println(`connection ${name} is reachable: ${r.message}`);
      }),
    );
}
