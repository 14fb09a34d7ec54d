import type { Command } from 'commander';
import { findCondition } from '../../core/api/conditions.ts';
import { Kinds, projectNamespace, type Environment, type Project } from '../../core/api/resources.ts';
import { ConflictError, ForbiddenError, ValidationError } from '../../core/errors.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { waitForObject } from '../../core/kube/wait.ts';
import { addEmitOptions, emitTarget } from '../emit.ts';
import { environmentManifest, projectManifest } from '../manifests.ts';
import { formatTable, printJson, println } from '../output.ts';
import { run, type Flags } from '../runner.ts';
import { Session } from '../session.ts';

const dns1123Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

function readyOf(obj: { status?: Project['status'] }): string {
  const c = findCondition(obj.status, 'Ready');
  return c ? c.status : 'Unknown';
}

function reasonOf(obj: { status?: Project['status'] }): string {
  return findCondition(obj.status, 'Ready')?.reason ?? '-';
}

function waitTimeoutMs(flags: Flags): number {
  return Number(flags.timeout ?? 60) * 1000;
}

/** Waits until Ready=True; a Stalled condition ends the wait with its reason. */
async function waitReady<T extends KubeObject & { status?: Project['status'] }>(client: KubeClient, kind: typeof Kinds.Project | typeof Kinds.Environment, name: string, namespace: string | undefined, flags: Flags): Promise<T | undefined> {
  return waitForObject<T>(
    client,
    kind,
    name,
    namespace,
    (obj) => {
      const stalled = findCondition(obj?.status, 'Stalled');
      if (stalled?.status === 'True') throw new ConflictError(`${kind.kind.toLowerCase()} ${name} cannot become ready: ${stalled.message}`, { reason: stalled.reason });
      return readyOf(obj ?? {}) === 'True';
    },
    { timeoutMs: waitTimeoutMs(flags), what: `${kind.kind.toLowerCase()} ${name} to become Ready (is the operator running?)` },
  );
}

/** The namespace of a project. Someone with rights only inside that namespace may not read the cluster-scoped Project: fall back to the default. */
export async function namespaceOfProject(client: KubeClient, project: string): Promise<string> {
  try {
    const p = await client.find<Project & KubeObject>(Kinds.Project, project);
    if (!p) throw new ValidationError(`project ${project} does not exist`, [], { reason: 'ProjectNotFound', hint: 'create it with `stk project create <name>` or check --project' });
    return p.status?.namespace ?? projectNamespace(p);
  } catch (err) {
    if (err instanceof ForbiddenError) return `stk-${project}`;
    throw err;
  }
}

export function registerProjectCommands(program: Command): void {
  const project = program.command('project').description('projects: one per application, each with its own namespace');

  const create = project
    .command('create')
    .description('create a project (and its namespace)')
    .argument('<project>', 'project name (DNS-1123 label)')
    .option('--namespace <namespace>', 'namespace to own (default stk-<project>)')
    .option('--no-wait', 'do not wait for the project to become Ready')
    .option('--timeout <seconds>', 'how long to wait for Ready', '60');
  addEmitOptions(create).action(
    run(async (flags, [name]) => {
      if (!name || !dns1123Label.test(name) || name.length > 50) {
        throw new ValidationError(`invalid project name "${name ?? ''}"`, [], { hint: 'use lowercase letters, digits and dashes, starting with a letter, at most 50 characters' });
      }
      const obj = projectManifest(name, flags.namespace === undefined ? undefined : String(flags.namespace));
      const dir = await emitTarget(flags);
      if (dir) {
        dir.write(dir.projectFile(name), obj);
        return dir.report(flags, await dir.publish(flags, { title: `santokit: project ${name}`, body: `Project ${name} (namespace ${projectNamespace(obj)}).`, branch: `santokit/project-${name}` }));
      }
      const session = new Session(flags);
      try {
        await (await session.client()).create(Kinds.Project, obj);
      } catch (err) {
        if (err instanceof ConflictError && err.reason === 'AlreadyExists') throw new ConflictError(`project ${name} already exists`, { reason: 'AlreadyExists', hint: 'choose another name, or use it: `stk context set --project ' + name + '`' });
        if (err instanceof ForbiddenError) throw new ForbiddenError(`forbidden: you may not create projects (create projects.santokit.io at cluster scope): ${err.message}`);
        throw err;
      }
      const ready = flags.wait === false ? undefined : await waitReady<Project & KubeObject>(await session.client(), Kinds.Project, name, undefined, flags);
      const namespace = ready?.status?.namespace ?? projectNamespace(obj);
      if (flags.json) printJson({ project: name, namespace, ready: ready ? true : null });
      else println(`project ${name} created (namespace ${namespace})`);
    }),
  );

  project
    .command('list')
    .description('list projects')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const { items } = await (await session.client()).list<Project & KubeObject>(Kinds.Project);
        items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
        if (flags.json) return printJson(items.map((p) => ({ name: p.metadata.name, namespace: p.status?.namespace ?? projectNamespace(p), ready: readyOf(p) })));
        println(formatTable(['PROJECT', 'NAMESPACE', 'READY'], items.map((p) => [p.metadata.name, p.status?.namespace ?? projectNamespace(p), readyOf(p)])));
      }),
    );
}

export function registerEnvCommands(program: Command): void {
  const env = program.command('env').description('environments of a project (dev, prod …)');

  const create = env
    .command('create')
    .description('create an environment')
    .argument('<env>', 'environment name (DNS-1123 label)')
    .option('--project <project>', 'project (default: context)')
    .option('--no-wait', 'do not wait for the environment to become Ready')
    .option('--timeout <seconds>', 'how long to wait for Ready', '60');
  addEmitOptions(create).action(
    run(async (flags, [name]) => {
      if (!name || !dns1123Label.test(name) || name.length > 40) {
        throw new ValidationError(`invalid environment name "${name ?? ''}"`, [], { hint: 'use lowercase letters, digits and dashes, starting with a letter, at most 40 characters' });
      }
      const session = new Session(flags);
      const projectName = session.requireProject();
      const dir = await emitTarget(flags);
      if (dir) {
        const file = dir.environmentFile(projectName, name);
        // Re-emitting keeps the release pointer the directory already holds.
        const spec = dir.read<Environment>(file)?.spec ?? { project: projectName };
        dir.write(file, environmentManifest(name, dir.namespaceOf(projectName), spec));
        return dir.report(flags, await dir.publish(flags, { title: `santokit: environment ${projectName}/${name}`, body: `Environment ${name} of project ${projectName}.`, branch: `santokit/env-${projectName}-${name}` }));
      }
      const namespace = await namespaceOfProject(await session.client(), projectName);
      const obj = environmentManifest(name, namespace, { project: projectName });
      try {
        await (await session.client()).create(Kinds.Environment, obj);
      } catch (err) {
        if (err instanceof ConflictError && err.reason === 'AlreadyExists') throw new ConflictError(`environment ${name} already exists in project ${projectName}`, { reason: 'AlreadyExists' });
        if (err instanceof ForbiddenError) throw new ForbiddenError(`forbidden: you may not create environments in project ${projectName} (namespace ${namespace}): ${err.message}`);
        throw err;
      }
      if (flags.wait !== false) await waitReady(await session.client(), Kinds.Environment, name, namespace, flags);
      if (flags.json) printJson({ project: projectName, env: name, namespace });
      else println(`environment ${name} created in project ${projectName}`);
    }),
  );

  env
    .command('list')
    .description('list the environments of a project')
    .option('--project <project>', 'project (default: context)')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const projectName = session.requireProject();
        const namespace = await namespaceOfProject(await session.client(), projectName);
        const { items } = await (await session.client()).list<Environment & KubeObject>(Kinds.Environment, { namespace });
        items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
        const rows = items.map((e) => ({ env: e.metadata.name, release: e.status?.currentRelease ?? null, desired: e.spec.release ?? null, ready: readyOf(e), reason: reasonOf(e) }));
        if (flags.json) return printJson(rows);
        println(formatTable(['ENV', 'RELEASE', 'DESIRED', 'READY', 'REASON'], rows.map((r) => [r.env, r.release ?? '-', r.desired ?? '-', r.ready, r.reason])));
      }),
    );
}
