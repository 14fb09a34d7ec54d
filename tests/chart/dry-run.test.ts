import { describe, expect, it } from 'vitest';
import { kubectl, uniqueName, expectExit, type RunResult } from '../support/cluster.ts';
import { createNamespace, renderChart, toYamlStream, type RenderedObject } from './helm.ts';

/**
 * Every object the chart renders is accepted by a real API server (server-side dry run, so
 * schema validation, defaulting and admission run, nothing is stored), in a fresh namespace
 * that enforces the `restricted` Pod Security Standard.
 */

/** The Prometheus Operator's CRD is not installed in the test cluster: ServiceMonitors are only checked as rendered. */
const notInstalledKinds = new Set(['ServiceMonitor']);

async function dryRun(objects: RenderedObject[]): Promise<RunResult> {
  return kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=santokit-chart-test', '-f', '-'], { input: toYamlStream(objects) });
}

describe('chart dry run', () => {
  for (const [title, set] of [
    ['default values', []],
    ['ServiceMonitor enabled', ['metrics.serviceMonitor.enabled=true']],
  ] as const) {
    it(`the API server accepts every rendered object (${title})`, async () => {
      const namespace = uniqueName('stk-dryrun');
      const release = uniqueName('rel');
      await createNamespace(namespace, {
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/warn': 'restricted',
      });
      const objects = await renderChart({ release, namespace, set: [...set], includeCrds: true });
      const kinds = new Set(objects.map((o) => o.kind));
      for (const kind of ['CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'Service', 'PodDisruptionBudget']) {
        expect(kinds, kind).toContain(kind);
      }
      expect(objects.filter((o) => o.kind === 'ServiceMonitor')).toHaveLength(set.length === 0 ? 0 : 2);

      const checked = objects.filter((o) => !notInstalledKinds.has(o.kind));
      const res = await dryRun(checked);
      expectExit(res);
      // PodSecurity warns on workload templates that would be rejected in this namespace.
      expect(res.stderr).not.toMatch(/violate PodSecurity/);
      // One line per object: `<kind>[.<group>]/<name> serverside-applied (server dry run)`.
      const lines = res.stdout.trim().split('\n');
      expect(lines).toHaveLength(checked.length);
      for (const o of checked) {
        const line = lines.find((l) => l.split('/')[0]!.split('.')[0] === o.kind.toLowerCase() && l.endsWith(`/${o.metadata.name} serverside-applied (server dry run)`));
        expect(line, `${o.kind} ${o.metadata.name} in:\n${res.stdout}`).toBeDefined();
      }
      // Nothing was stored.
      const stored = await kubectl(['get', 'deployments,serviceaccounts,roles', '--namespace', namespace, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
      expect(stored.stdout.trim()).toBe('');
      await kubectl(['delete', 'namespace', namespace, '--wait=false']);
    });
  }
});
