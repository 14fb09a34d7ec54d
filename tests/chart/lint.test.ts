import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { repoRoot, uniqueName, expectExit } from '../support/cluster.ts';
import { chartDir, findObject, helm, renderChart, type RenderedObject } from './helm.ts';

/**
 * The chart on its own: helm lint, the CRD copies, and what the default values render (the
 * contract a cluster operator relies on: leader election, probes, security context, RBAC shape).
 */

interface Container {
  name: string;
  args: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  ports: Array<{ name: string; containerPort: number }>;
  startupProbe?: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
}
interface Deployment extends RenderedObject {
  spec: { replicas: number; template: { spec: { serviceAccountName: string; securityContext: Record<string, unknown>; containers: Container[] } } };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];

describe('chart lint', () => {
  it('helm lint is clean, also with --strict', async () => {
    for (const args of [['lint', chartDir], ['lint', '--strict', chartDir]]) {
      const res = await helm(args);
      expectExit(res);
      expect(res.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(res.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });

  it('the chart CRDs are byte-identical copies of crds/', () => {
    const source = fs.readdirSync(path.join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml')).sort();
    const copies = fs.readdirSync(path.join(chartDir, 'crds')).sort();
    expect(copies).toEqual(source);
    expect(source).toHaveLength(5);
    for (const file of source) {
      const a = fs.readFileSync(path.join(repoRoot, 'crds', file));
      const b = fs.readFileSync(path.join(chartDir, 'crds', file));
      expect(b.equals(a), `charts/santokit/crds/${file} differs from crds/${file}: copy it again`).toBe(true);
    }
  });

  it('the image the chart runs matches the Dockerfile: entry point, bridge subcommand, numeric non-root user', () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/operator\/main\.js"\]$/m);
    expect(fs.existsSync(path.join(repoRoot, 'dist/operator/main.js'))).toBe(true);
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
    const values = YAML.parse(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')) as { podSecurityContext: { runAsUser: number; runAsGroup: number } };
    expect(user?.slice(1).map(Number)).toEqual([values.podSecurityContext.runAsUser, values.podSecurityContext.runAsGroup]);
    expect(values.podSecurityContext.runAsUser).toBeGreaterThan(0);
  });
});

describe('chart defaults', () => {
  const namespace = uniqueName('stk-render');
  let objects: RenderedObject[];
  let operator: Deployment;
  let bridge: Deployment;
  let op: Container;
  let br: Container;

  beforeAll(async () => {
    objects = await renderChart({ release: 'santokit', namespace });
    operator = findObject(objects, 'Deployment', '-operator') as Deployment;
    bridge = findObject(objects, 'Deployment', '-bridge') as Deployment;
    op = operator.spec.template.spec.containers[0]!;
    br = bridge.spec.template.spec.containers[0]!;
  });

  it('runs two operator replicas that elect a leader over a Lease in the release namespace', () => {
    expect(operator.spec.replicas).toBe(2);
    expect(flag(op.args, '--leader-elect')).toBe('true');
    expect(flag(op.args, '--namespace')).toBe(namespace);
    expect(flag(op.args, '--lease-name')).toBe('santokit-operator');
    expect(op.env).toContainEqual({ name: 'SANTOKIT_IDENTITY', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  });

  it('probes /healthz and /readyz on the health port, which also serves metrics', () => {
    expect(op.ports).toEqual([{ name: 'metrics', containerPort: 8081, protocol: 'TCP' }]);
    expect(flag(op.args, '--health-port')).toBe('8081');
    expect(op.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(op.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(op.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(br.args[0]).toBe('bridge');
    expect(flag(br.args, '--port')).toBe('8080');
    // the bridge's probes and metrics are on a port of their own, never behind the public Service
    expect(flag(br.args, '--health-port')).toBe('8081');
    expect(br.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'probe' });
    expect(br.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'probe' });
    const bridgeMetrics = findObject(objects, 'Service', '-bridge-metrics') as RenderedObject & { spec: { type: string; ports: Array<{ targetPort: string }> } };
    expect(bridgeMetrics.spec).toMatchObject({ type: 'ClusterIP', ports: [expect.objectContaining({ name: 'metrics', targetPort: 'probe' })] });
    const metrics = findObject(objects, 'Service', '-operator-metrics') as RenderedObject & { spec: { ports: Array<{ targetPort: string }> } };
    expect(metrics.spec.ports[0]!.targetPort).toBe('metrics');
    const service = findObject(objects, 'Service', '-bridge') as RenderedObject & { spec: { ports: Array<{ targetPort: string }> } };
    expect(service.spec.ports.map((p) => p.targetPort)).toEqual(['http']);
  });

  it('runs both containers restricted: non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp', () => {
    for (const d of [operator, bridge]) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.containers[0]!.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.containers[0]!.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(pod.containers[0]!.resources.limits).toMatchObject({ memory: expect.any(String) });
    }
  });

  it("caps each container's V8 heap (NODE_OPTIONS) at about half its memory limit", () => {
    const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? NaN);
    for (const d of [operator, bridge]) {
      const c = d.spec.template.spec.containers[0]!;
      const cap = Number(/^--max-old-space-size=(\d+)$/.exec(c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '')?.[1] ?? NaN);
      const limit = mib(c.resources.limits.memory!);
      expect(cap, d.metadata.name).toBeGreaterThanOrEqual(limit * 0.4);
      expect(cap, d.metadata.name).toBeLessThanOrEqual(limit * 0.6);
      expect(mib(c.resources.requests.memory!), d.metadata.name).toBeLessThan(limit);
    }
  });

  it('gives each component its own ServiceAccount, and renders no ServiceMonitor by default', () => {
    const accounts = objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name);
    expect(accounts).toEqual(expect.arrayContaining([operator.spec.template.spec.serviceAccountName, bridge.spec.template.spec.serviceAccountName]));
    expect(operator.spec.template.spec.serviceAccountName).not.toBe(bridge.spec.template.spec.serviceAccountName);
    expect(objects.filter((o) => o.kind === 'ServiceMonitor')).toEqual([]);
  });

  it('grants RBAC without wildcards; namespace-local rules sit in a Role of the release namespace', () => {
    const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role') as Array<RenderedObject & { rules: Rule[] }>;
    // Two bound cluster-wide, two bound per project namespace by the operator.
    expect(roles.map((r) => r.kind).sort()).toEqual(['ClusterRole', 'ClusterRole', 'ClusterRole', 'ClusterRole', 'Role']);
    for (const role of roles) {
      for (const rule of role.rules) {
        for (const v of [...rule.apiGroups, ...rule.resources, ...rule.verbs, ...(rule.resourceNames ?? [])]) expect(v, `${role.metadata.name}: ${JSON.stringify(rule)}`).not.toContain('*');
      }
    }
    const role = findObject(objects, 'Role', '-operator') as RenderedObject & { rules: Rule[] };
    expect(role.metadata.namespace).toBe(namespace);
    expect(role.rules).toContainEqual({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['santokit-operator'], verbs: ['get', 'patch'] });
    const clusterRole = findObject(objects, 'ClusterRole', '-operator') as RenderedObject & { rules: Rule[] };
    expect(clusterRole.rules.some((r) => r.resources.includes('leases'))).toBe(false);
    // The project ClusterRoles may be written by name only.
    const rbacRule = clusterRole.rules.find((r) => r.resources.includes('clusterroles') && r.verbs.includes('escalate'))!;
    expect(rbacRule.resourceNames).toEqual(['santokit-project-admin', 'santokit-project-deployer', 'santokit-project-viewer']);
    // Secret rights are never cluster-wide: only in the per-project ClusterRoles, which the operator may bind by name.
    for (const bound of [clusterRole, findObject(objects, 'ClusterRole', '-bridge') as RenderedObject & { rules: Rule[] }]) {
      expect(bound.rules.some((r) => r.resources.includes('secrets')), bound.metadata.name).toBe(false);
    }
    const bindRule = clusterRole.rules.find((r) => r.verbs.includes('bind'))!;
    expect(bindRule.resourceNames).toEqual([findObject(objects, 'ClusterRole', '-operator-project').metadata.name, findObject(objects, 'ClusterRole', '-bridge-project').metadata.name]);
    for (const binding of objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') as Array<RenderedObject & { subjects: Array<{ kind: string; namespace: string }> }>) {
      expect(binding.subjects).toEqual([expect.objectContaining({ kind: 'ServiceAccount', namespace })]);
    }
  });

  it('refuses several operator replicas without leader election', async () => {
    const res = await helm(['template', 'santokit', chartDir, '--namespace', namespace, '--set', 'operator.leaderElection.enabled=false']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('operator.leaderElection.enabled=false needs operator.replicaCount=1');
    const single = await renderChart({ release: 'santokit', namespace, set: ['operator.leaderElection.enabled=false', 'operator.replicaCount=1'] });
    const args = (findObject(single, 'Deployment', '-operator') as Deployment).spec.template.spec.containers[0]!.args;
    expect(flag(args, '--leader-elect')).toBe('false');
    expect((findObject(single, 'Role', '-operator') as RenderedObject & { rules: Rule[] }).rules.some((r) => r.resources.includes('leases'))).toBe(false);
  });

  it('renders every label and annotation a user sets as a string, also where --set reads a number or a boolean', async () => {
    // `--set x=140221` gives Helm an integer; the API server refuses a label or annotation that is not a string.
    const set = [
      'commonLabels.team=42',
      'operator.podLabels.tier=1',
      'operator.podAnnotations.rollout=140221',
      'bridge.podLabels.canary=true',
      'bridge.podAnnotations.rollout=1e3',
      'operator.serviceAccount.annotations.weight=7',
      'bridge.serviceAccount.annotations.flag=false',
      'operator.service.annotations.port=9090',
      'bridge.service.annotations.ratio=1.5',
      'metrics.serviceMonitor.enabled=true',
      'metrics.serviceMonitor.labels.release=0',
    ];
    const objects = await renderChart({ release: 'santokit', namespace, set });
    type Meta = { labels?: Record<string, unknown>; annotations?: Record<string, unknown> };
    const maps = objects.flatMap((o) => {
      const template = (o as { spec?: { template?: { metadata?: Meta } } }).spec?.template?.metadata;
      return [o.metadata as Meta, ...(template ? [template] : [])].flatMap((m) => [m.labels ?? {}, m.annotations ?? {}]);
    });
    const values = maps.flatMap((m) => Object.entries(m));
    expect(values.filter(([, v]) => typeof v !== 'string')).toEqual([]);
    const operator = findObject(objects, 'Deployment', '-operator') as Deployment & { spec: { template: { metadata: Meta } } };
    expect(operator.spec.template.metadata.annotations).toMatchObject({ rollout: '140221' });
    expect(operator.spec.template.metadata.labels).toMatchObject({ tier: '1', team: '42' });
    const bridge = findObject(objects, 'Deployment', '-bridge') as Deployment & { spec: { template: { metadata: Meta } } };
    expect(bridge.spec.template.metadata.labels).toMatchObject({ canary: 'true' });
    expect(findObject(objects, 'ServiceAccount', '-bridge').metadata).toMatchObject({ annotations: { flag: 'false' } });
    expect(objects.filter((o) => o.kind === 'ServiceMonitor').map((o) => o.metadata.labels?.release)).toEqual(['0', '0']);
  });

  it('renders one ServiceMonitor per component when enabled', async () => {
    const withMonitor = await renderChart({ release: 'santokit', namespace, set: ['metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.labels.release=prom'] });
    const monitors = withMonitor.filter((o) => o.kind === 'ServiceMonitor') as Array<RenderedObject & { spec: { endpoints: Array<{ port: string; path: string }> } }>;
    expect(monitors.map((m) => [m.apiVersion, m.metadata.name, m.metadata.labels?.release, m.spec.endpoints[0]!.port, m.spec.endpoints[0]!.path])).toEqual([
      ['monitoring.coreos.com/v1', 'santokit-operator', 'prom', 'metrics', '/metrics'],
      ['monitoring.coreos.com/v1', 'santokit-bridge', 'prom', 'metrics', '/metrics'],
    ]);
  });
});
