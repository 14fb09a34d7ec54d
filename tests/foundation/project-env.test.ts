import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment, type Project } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, kubectl, restrictedKubeconfig, startOperator, stk, uniqueName, waitForAccess, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';

const client = await adminClient();

/** OPERATOR-001's first steps through the built `stk`, against the real API server and a running operator. */
describe('stk project and env', () => {
  let operator: OperatorProcess;

  beforeAll(async () => {
    operator = await startOperator({ leaseName: uniqueName('lease-project-env') });
    await waitForOperatorReady(operator);
  });
  afterAll(async () => {
    await operator.stop();
  });

  it('creates a project with its namespace; a duplicate exits non-zero naming the project', async () => {
    const name = uniqueName('demo');
    const first = await stk(['project', 'create', name]);
    expectExit(first);
    expect(first.stdout).toContain(`project ${name} created (namespace stk-${name})`);

    const project = await client.get<Project & KubeObject>(Kinds.Project, name);
    expect(project.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'NamespaceCreated', observedGeneration: 1 });
    const ns = await client.get<KubeObject & { metadata: { labels?: Record<string, string>; ownerReferences?: Array<{ uid: string; kind: string }> } }>(Kinds.Namespace, `stk-${name}`);
    expect(ns.metadata.labels?.['santokit.io/project']).toBe(name);
    expect(ns.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Project', uid: project.metadata.uid });

    const again = await stk(['project', 'create', name]);
    expectExit(again, 2);
    expect(again.stderr).toContain(`project ${name} already exists`);

    const list = await stk(['project', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toContainEqual({ name, namespace: `stk-${name}`, ready: 'True' });
  });

  it('creates dev and prod environments, both Ready', async () => {
    const name = uniqueName('demo');
    expectExit(await stk(['project', 'create', name]));
    for (const env of ['dev', 'prod']) {
      const res = await stk(['env', 'create', '--project', name, env]);
      expectExit(res);
      const obj = await client.get<Environment & KubeObject>(Kinds.Environment, env, `stk-${name}`);
      expect(obj.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }
    const list = await stk(['env', 'list', '--project', name]);
    expect(list.stdout).toMatch(/^ENV\s+RELEASE\s+DESIRED\s+READY\s+REASON\ndev\s+-\s+-\s+True\s+Succeeded\nprod\s+-\s+-\s+True\s+Succeeded\n$/);
  });

  it('refuses a project to the restricted user; a RoleBinding to santokit-project-admin lets it create an env there', async () => {
    const name = uniqueName('demo');
    const denied = await stk(['project', 'create', name], { kubeconfig: restrictedKubeconfig() });
    expectExit(denied, 2);
    expect(denied.stderr).toMatch(/forbidden/i);
    expect(denied.stderr).toContain('create projects.santokit.io');
    expect(await client.find(Kinds.Project, name)).toBeUndefined();

    expectExit(await stk(['project', 'create', name]));
    const envDenied = await stk(['env', 'create', '--project', name, 'dev'], { kubeconfig: restrictedKubeconfig() });
    expectExit(envDenied, 2);
    expect(envDenied.stderr).toMatch(/forbidden: you may not create environments in project/);

    const bind = await kubectl(['create', 'rolebinding', 'restricted-admin', '-n', `stk-${name}`, '--clusterrole', 'santokit-project-admin', '--user', 'restricted']);
    expectExit(bind);
    await waitForAccess(['create', 'environments.santokit.io', '-n', `stk-${name}`], { kubeconfig: restrictedKubeconfig() });
    const allowed = await stk(['env', 'create', '--project', name, 'dev'], { kubeconfig: restrictedKubeconfig() });
    expectExit(allowed);
    expect((await client.get<Environment & KubeObject>(Kinds.Environment, 'dev', `stk-${name}`)).spec.project).toBe(name);
  });

  it('whoami shows the user and what it may do in the project', async () => {
    const name = uniqueName('demo');
    expectExit(await stk(['project', 'create', name]));
    const res = await stk(['whoami', '--project', name, '--json'], { kubeconfig: restrictedKubeconfig() });
    expectExit(res);
    const out = JSON.parse(res.stdout) as { user: string; canCreateProjects: boolean; permissions: Array<{ action: string; allowed: boolean }> };
    expect(out.user).toBe('restricted');
    expect(out.canCreateProjects).toBe(false);
    expect(out.permissions.find((p) => p.action === 'create environments')?.allowed).toBe(false);

    const login = await stk(['login']);
    expectExit(login);
    expect(login.stdout).toMatch(/logged in to https:\/\/127\.0\.0\.1:\d+\/ \(context .*, Kubernetes v1\.34\.\d+\) as santokit-admin/);
  });

  it('an environment whose project does not exist is not Ready and says why', async () => {
    const ns = uniqueName('orphan');
    expectExit(await kubectl(['create', 'namespace', ns]));
    const env = { apiVersion: 'santokit.io/v1alpha1', kind: 'Environment', metadata: { name: 'dev', namespace: ns }, spec: { project: uniqueName('missing') } };
    expectExit(await kubectl(['create', '-f', '-'], { input: JSON.stringify(env) }));
    const wait = await kubectl(['wait', '-n', ns, 'environment/dev', '--for', 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}=ProjectNotFound', '--timeout', '30s']);
    expectExit(wait);
  });

  it('exits 1 naming the flag when no project is given', async () => {
    const res = await stk(['env', 'list'], { cwd: fs.mkdtempSync(path.join(os.tmpdir(), 'stk-')) });
    expectExit(res, 1);
    expect(res.stderr).toContain('no project given');
    expect(res.stderr).toContain('--project');
  });
});
