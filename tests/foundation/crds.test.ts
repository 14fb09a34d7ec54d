import { describe, expect, it } from 'vitest';
import { eventually, kubectl, uniqueName, expectExit } from '../support/cluster.ts';

/** The API server itself enforces the CRD schemas: what it accepts and rejects, with which message. */

const release = (name: string, namespace: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'santokit.io/v1alpha1', kind: 'Release', metadata: { name, namespace }, spec });

async function withNamespace(): Promise<string> {
  const ns = uniqueName('crd');
  const res = await kubectl(['create', 'namespace', ns]);
  expectExit(res);
  return ns;
}

const crdNames = ['connections', 'environments', 'infrahosts', 'projects', 'releases'].map((p) => `${p}.santokit.io`);

/** Each Santokit CRD's resourceVersion: it changes with every write. */
async function crdVersions(): Promise<Record<string, string>> {
  const res = await kubectl(['get', 'crd', ...crdNames, '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}']);
  expectExit(res);
  const versions = Object.fromEntries(res.stdout.trim().split('\n').map((l) => l.split('=') as [string, string]));
  expect(Object.keys(versions).sort()).toEqual(crdNames);
  return versions;
}

describe('CRDs', () => {
  it('are installed, served and listed in the santokit category', async () => {
    const res = await kubectl(['get', 'crd', '-o', 'name']);
    expect(res.stdout.split('\n').filter((l) => l.includes('santokit.io')).sort()).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/connections.santokit.io',
      'customresourcedefinition.apiextensions.k8s.io/environments.santokit.io',
      'customresourcedefinition.apiextensions.k8s.io/infrahosts.santokit.io',
      'customresourcedefinition.apiextensions.k8s.io/projects.santokit.io',
      'customresourcedefinition.apiextensions.k8s.io/releases.santokit.io',
    ]);
    // Discovery learns the category shortly after the CRDs are established.
    const category = await eventually(async () => {
      const res = await kubectl(['get', 'santokit', '-A']);
      return res.code === 0 ? res : undefined;
    }, { what: 'kubectl get santokit to work' });
    // No error; on a cluster without Santokit objects yet, kubectl says so on stderr.
    expect(category.stderr).toMatch(/^(No resources found\n)?$/);
  });

  it('kubectl apply -f crds/ is idempotent: applied again, nothing changes', async () => {
    // The first apply may record kubectl's last-applied state ("configured"): that is a change.
    expectExit(await kubectl(['apply', '-f', 'crds/']));
    const before = await crdVersions();
    // The second must find every CRD as it is: "unchanged", and no write (same resourceVersions).
    const again = await kubectl(['apply', '-f', 'crds/']);
    expectExit(again);
    expect(again.stdout.trim().split('\n').sort()).toEqual(crdNames.map((n) => `customresourcedefinition.apiextensions.k8s.io/${n} unchanged`));
    expect(await crdVersions()).toEqual(before);
  });

  it('kubectl apply --server-side -f crds/ (the install command) is idempotent: applied again, nothing is written', async () => {
    expectExit(await kubectl(['apply', '--server-side', '--force-conflicts', '-f', 'crds/']));
    const before = await crdVersions();
    expectExit(await kubectl(['apply', '--server-side', '-f', 'crds/']));
    expect(await crdVersions()).toEqual(before);
  });

  it('accepts a valid Release and shows id, ref, ready and age as printer columns', async () => {
    const ns = await withNamespace();
    const ok = await kubectl(['apply', '-f', '-'], { input: release('r-0123abcd', ns, { project: 'demo', ref: 'abc1234', schema: {}, permissions: {} }) });
    expectExit(ok);
    const get = await kubectl(['get', 'releases', '-n', ns]);
    expect(get.stdout.split('\n')[0]).toMatch(/^NAME\s+REF\s+PROJECT\s+READY\s+AGE$/);
    expect(get.stdout).toMatch(/r-0123abcd\s+abc1234\s+demo/);
  });

  it('rejects a Release with a bad name', async () => {
    const ns = await withNamespace();
    const res = await kubectl(['create', '-f', '-'], { input: release('Bad_Name', ns, { project: 'demo', ref: 'abc1234', schema: {}, permissions: {} }) });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/metadata.name: Invalid value: "Bad_Name"/);
  });

  it('rejects a Release with a missing required field or a malformed ref', async () => {
    const ns = await withNamespace();
    const missing = await kubectl(['create', '-f', '-'], { input: release(uniqueName('r'), ns, { project: 'demo', schema: {}, permissions: {} }) });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/spec.ref: Required value/);
    const badRef = await kubectl(['create', '-f', '-'], { input: release(uniqueName('r'), ns, { project: 'demo', ref: 'main', schema: {}, permissions: {} }) });
    expect(badRef.code).not.toBe(0);
    expect(badRef.stderr).toMatch(/spec.ref: Invalid value: "main"/);
  });

  it('rejects any change to an existing Release spec', async () => {
    const ns = await withNamespace();
    const name = uniqueName('r');
    const created = await kubectl(['create', '-f', '-'], { input: release(name, ns, { project: 'demo', ref: 'abc1234', schema: {}, permissions: {} }) });
    expectExit(created);
    const patched = await kubectl(['patch', 'release', name, '-n', ns, '--type', 'merge', '-p', '{"spec":{"ref":"def5678"}}']);
    expect(patched.code).not.toBe(0);
    expect(patched.stderr).toContain('Release spec is immutable');
    const after = await kubectl(['get', 'release', name, '-n', ns, '-o', 'jsonpath={.spec.ref}']);
    expect(after.stdout).toBe('abc1234');
  });

  it('validates Environment, Connection, Project and InfraHost specs', async () => {
    const ns = await withNamespace();
    const cases: Array<[object, RegExp]> = [
      [{ kind: 'Environment', metadata: { name: 'dev', namespace: ns }, spec: {} }, /spec.project: Required value/],
      [{ kind: 'Environment', metadata: { name: 'dev', namespace: ns }, spec: { project: 'demo', release: 'Not Valid' } }, /spec.release: Invalid value/],
      [{ kind: 'Connection', metadata: { name: 'dev-main', namespace: ns }, spec: { project: 'demo', environment: 'dev', name: 'main', engine: 'mysql', secretRef: { name: 's', key: 'url' } } }, /spec.engine: Unsupported value: "mysql"/],
      [{ kind: 'Connection', metadata: { name: 'dev-main', namespace: ns }, spec: { project: 'demo', environment: 'dev', name: 'main', engine: 'postgres' } }, /exactly one of sealedUrl or secretRef is required/],
      [{ kind: 'Project', metadata: { name: '1-starts-with-digit' }, spec: {} }, /DNS-1123 label starting with a letter/],
      [
        { kind: 'InfraHost', metadata: { name: 'h', namespace: ns }, spec: { project: 'demo', environment: 'dev', host: 'app-1', provider: 'aws', region: 'nyc1', size: 's', image: 'i', credentialsSecretRef: { name: 'a', key: 'b' }, sshKey: { name: 'k' } } },
        /spec.provider: Unsupported value: "aws"/,
      ],
    ];
    for (const [obj, message] of cases) {
      const res = await kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'santokit.io/v1alpha1', ...obj }) });
      expect(res.code, JSON.stringify(obj)).not.toBe(0);
      expect(res.stderr).toMatch(message);
    }
  });

  it('makes the project of an Environment immutable', async () => {
    const ns = await withNamespace();
    const env = { apiVersion: 'santokit.io/v1alpha1', kind: 'Environment', metadata: { name: 'dev', namespace: ns }, spec: { project: 'demo' } };
    expectExit(await kubectl(['create', '-f', '-'], { input: JSON.stringify(env) }));
    const res = await kubectl(['patch', 'environment', 'dev', '-n', ns, '--type', 'merge', '-p', '{"spec":{"project":"other"}}']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.project is immutable');
  });
});
