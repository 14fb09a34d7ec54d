import { describe, expect, it } from 'vitest';
import { operatorConfigSpec } from '../../operator/config.ts';
import { kubectl, uniqueName, expectExit, type RunResult } from '../support/cluster.ts';
import { createNamespace, findObject, renderChart, toYamlStream, type RenderedObject } from './helm.ts';

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

  // bridge.limits → the data plane's flags, and each default is the binary's own (operator/config.ts).
  const limits = {
    maxBodyBytes: operatorConfigSpec.bridgeMaxBodyBytes,
    bodyTimeoutSeconds: operatorConfigSpec.bridgeBodyTimeoutSeconds,
    maxResponseBytes: operatorConfigSpec.bridgeMaxResponseBytes,
    maxInFlight: operatorConfigSpec.bridgeMaxInFlight,
    keyRate: operatorConfigSpec.bridgeKeyRate,
    keyBurst: operatorConfigSpec.bridgeKeyBurst,
    maxQueuedVerifications: operatorConfigSpec.bridgeMaxQueuedVerifications,
    statementTimeoutMs: operatorConfigSpec.bridgeStatementTimeoutMs,
    apiKeyMaxStalenessSeconds: operatorConfigSpec.apiKeyMaxStalenessSeconds,
  } as const;

  async function bridgeArgs(set: string[]): Promise<string[]> {
    const objects = await renderChart({ release: uniqueName('rel'), namespace: uniqueName('stk-limits'), set });
    const deployment = findObject(objects, 'Deployment', '-bridge') as RenderedObject & { spec: { template: { spec: { containers: Array<{ name: string; args: string[] }> } } } };
    return deployment.spec.template.spec.containers.find((c) => c.name === 'bridge')!.args;
  }
  /** The value after each occurrence of `flag`. */
  const valuesOf = (args: string[], flag: string) => args.flatMap((a, i) => (a === `--${flag}` ? [args[i + 1]] : []));

  it("renders bridge.limits as the data plane's flags, by default with the binary's own defaults", async () => {
    const args = await bridgeArgs([]);
    for (const [value, spec] of Object.entries(limits)) expect(valuesOf(args, spec.flag), `bridge.limits.${value}`).toEqual([String(spec.default)]);
  });

  it('renders values set under bridge.limits (zero and large numbers as digits); extraArgs still come last', async () => {
    const set: Record<keyof typeof limits, number> = {
      maxBodyBytes: 2097152,
      bodyTimeoutSeconds: 20,
      maxResponseBytes: 268435456,
      maxInFlight: 64,
      keyRate: 0,
      keyBurst: 50,
      maxQueuedVerifications: 0,
      statementTimeoutMs: 120000,
      apiKeyMaxStalenessSeconds: 90,
    };
    const args = await bridgeArgs([...Object.entries(set).map(([k, v]) => `bridge.limits.${k}=${v}`), 'bridge.extraArgs={--key-rate,5}']);
    for (const [value, spec] of Object.entries(limits)) {
      const expected = [String(set[value as keyof typeof limits])];
      if (spec.flag === 'key-rate') expected.push('5');
      expect(valuesOf(args, spec.flag), `bridge.limits.${value}`).toEqual(expected);
    }
    expect(args.slice(-2)).toEqual(['--key-rate', '5']);
    // The older bridge.apiKeyMaxStalenessSeconds, when set, still wins.
    expect(valuesOf(await bridgeArgs(['bridge.apiKeyMaxStalenessSeconds=7']), 'api-key-max-staleness')).toEqual(['7']);
  });
});
