import type { Command } from 'commander';
import { UnauthorizedError } from '../../core/errors.ts';
import type { KubeClient } from '../../core/kube/client.ts';
import { formatTable, printJson, println } from '../output.ts';
import { run } from '../runner.ts';
import { Session } from '../session.ts';
import { namespaceOfProject } from './project.ts';
import { whoAmI, type UserInfo } from '../identity.ts';

/** The questions `stk whoami` asks about a project: what a person usually wants to do there. */
const projectActions: Array<{ action: string; verb: string; resource: string; group: string }> = [
  { action: 'read environments and releases', verb: 'list', resource: 'environments', group: 'santokit.io' },
  { action: 'create environments', verb: 'create', resource: 'environments', group: 'santokit.io' },
  { action: 'apply releases', verb: 'create', resource: 'releases', group: 'santokit.io' },
  { action: 'promote and roll back', verb: 'patch', resource: 'environments', group: 'santokit.io' },
  { action: 'manage connections', verb: 'create', resource: 'connections', group: 'santokit.io' },
  { action: 'manage hosts', verb: 'create', resource: 'infrahosts', group: 'santokit.io' },
  { action: 'manage API keys', verb: 'create', resource: 'secrets', group: '' },
];

async function canI(client: KubeClient, namespace: string | undefined, verb: string, resource: string, group: string): Promise<boolean> {
  const review = await client.post<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { verb, resource, group, ...(namespace ? { namespace } : {}) } },
  });
  return review.status?.allowed === true;
}

export function registerAuthCommands(program: Command): void {
  program
    .command('login')
    .description('check that your kubeconfig credentials reach the cluster')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const client = await session.client();
        let version: { gitVersion?: string };
        let user: UserInfo;
        try {
          version = await client.request<{ gitVersion?: string }>('GET', '/version');
          user = await whoAmI(client);
        } catch (err) {
          if (err instanceof UnauthorizedError) throw new UnauthorizedError(`the cluster at ${client.serverUrl} rejected your credentials`, { hint: 'refresh the token or client certificate in your kubeconfig' });
          throw err;
        }
        const out = { server: client.serverUrl, context: client.currentContext, user: user.username, groups: user.groups, serverVersion: version.gitVersion ?? 'unknown' };
        if (flags.json) return printJson(out);
        println(`logged in to ${out.server} (context ${out.context}, Kubernetes ${out.serverVersion}) as ${out.user}`);
      }),
    );

  program
    .command('whoami')
    .description('show who you are and what you may do in the current project')
    .option('--project <project>', 'project (default: context)')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const client = await session.client();
        const user = await whoAmI(client);
        const canCreateProjects = await canI(client, undefined, 'create', 'projects', 'santokit.io');
        const project = session.settings.project;
        let namespace: string | undefined;
        let permissions: Array<{ action: string; allowed: boolean }> = [];
        if (project) {
          namespace = await namespaceOfProject(client, project);
          permissions = await Promise.all(projectActions.map(async (a) => ({ action: a.action, allowed: await canI(client, namespace, a.verb, a.resource, a.group) })));
        }
        if (flags.json) return printJson({ user: user.username, groups: user.groups, canCreateProjects, project: project ?? null, namespace: namespace ?? null, permissions });
        println(`user: ${user.username}`);
        println(`groups: ${user.groups.join(', ') || '-'}`);
        println(`create projects: ${canCreateProjects ? 'yes' : 'no'}`);
        if (!project) {
          println('project: - (pass --project or run `stk context set --project <name>` to see project permissions)');
          return;
        }
        println(`project: ${project} (namespace ${namespace})`);
        println(formatTable(['ACTION', 'ALLOWED'], permissions.map((p) => [p.action, p.allowed ? 'yes' : 'no'])));
      }),
    );
}
