import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import {
  desiredHosts,
  dropletName,
  hostTags,
  loadDesiredHosts,
  managedTags,
  ownershipTag,
  parseHostsFile,
  toInfraHostSpec,
} from './hosts.ts';

const issueExample = `provider: digitalocean
credentialsSecretRef: { name: do-token, key: token }
defaults: { region: nyc1, size: s-2vcpu-4gb, image: ubuntu-24-04-x64 }
sshKey: { name: deploy, privateKeySecretRef: { name: deploy-ssh, key: id_ed25519 } }
bootstrap:
  docker: { enabled: true }
  tailscale: { authKeySecretRef: { name: ts, key: authkey }, tags: [tag:app] }
environments:
  staging:
    app-1: { role: app }
    db-1:  { role: db, size: s-4vcpu-8gb }
`;

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('parseHostsFile + desiredHosts', () => {
  it('expands the issue example into two sorted, fully resolved hosts', () => {
    const hosts = loadDesiredHosts(issueExample, { project: 'shop' });
    expect(hosts.map((h) => `${h.environment}/${h.host}`)).toEqual(['staging/app-1', 'staging/db-1']);
    expect(hosts[1]).toEqual({
      project: 'shop',
      environment: 'staging',
      host: 'db-1',
      role: 'db',
      provider: 'digitalocean',
      region: 'nyc1',
      size: 's-4vcpu-8gb',
      image: 'ubuntu-24-04-x64',
      tags: ['santokit', 'santokit-env-staging'],
      userTags: [],
      sshKey: { name: 'deploy', privateKeySecretRef: { name: 'deploy-ssh', key: 'id_ed25519' } },
      bootstrap: { docker: { enabled: true }, tailscale: { authKeySecretRef: { name: 'ts', key: 'authkey' }, tags: ['tag:app'] } },
      credentialsSecretRef: { name: 'do-token', key: 'token' },
      deletionPolicy: 'Delete',
      dropletName: 'shop-staging-db-1',
      resourceName: 'staging-db-1',
    });
    expect(Object.isFrozen(hosts[1])).toBe(true);
  });

  it('orders environments and hosts by name whatever the file order, and is identical on a second run', () => {
    const text = `provider: digitalocean
credentialsSecretRef: { name: do-token, key: token }
defaults: { region: nyc1, size: s-1vcpu-1gb, image: ubuntu-24-04-x64, tags: [team-a] }
sshKey: { generate: true }
environments:
  staging: { web-2: {}, web-10: {}, db: { tags: [pg, backup] } }
  dev: { web-1: { region: ams3 } }
`;
    const first = loadDesiredHosts(text, { project: 'shop' });
    const second = loadDesiredHosts(text, { project: 'shop' });
    expect(first).toEqual(second);
    expect(first.map((h) => h.dropletName)).toEqual(['shop-dev-web-1', 'shop-staging-db', 'shop-staging-web-10', 'shop-staging-web-2']);
    expect(first[0]?.region).toBe('ams3');
    expect(first[0]?.tags).toEqual(['santokit', 'santokit-env-dev', 'team-a']);
    expect(first[1]?.tags).toEqual(['backup', 'pg', 'santokit', 'santokit-env-staging']);
    expect(first[0]?.bootstrap).toEqual({ docker: { enabled: true } });
  });

  it('carries adopt: byName from a host entry into the InfraHost spec, and refuses any other value', () => {
    const text = `provider: digitalocean
credentialsSecretRef: { name: do-token, key: token }
defaults: { region: nyc1, size: s-2vcpu-4gb, image: ubuntu-24-04-x64 }
sshKey: { generate: true }
environments:
  staging:
    app-1: { adopt: byName }
    db-1: {}
`;
    const hosts = loadDesiredHosts(text, { project: 'shop' });
    expect(hosts.map((h) => [h.host, toInfraHostSpec(h).adopt])).toEqual([
      ['app-1', 'byName'],
      ['db-1', undefined],
    ]);
    expect('adopt' in toInfraHostSpec(hosts[1] ?? hosts[0]!)).toBe(false);
    expect(() => loadDesiredHosts(text.replace('adopt: byName', 'adopt: always'), { project: 'shop' })).toThrow(ValidationError);
  });

  it('limits expansion to one environment when asked', () => {
    const text = readFileSync(new URL('../../config/infra/hosts.yaml', import.meta.url), 'utf8');
    const hosts = loadDesiredHosts(text, { project: 'demo', environment: 'prod' });
    expect(hosts.map((h) => h.host)).toEqual(['app-1', 'app-2', 'db-1']);
    expect(hosts.find((h) => h.host === 'db-1')?.deletionPolicy).toBe('Orphan');
  });

  it('rejects an environment the file does not declare, naming the ones it does', () => {
    const err = validationError(() => loadDesiredHosts(issueExample, { project: 'shop', environment: 'prod' }));
    expect(err.message).toContain('"prod" is not declared');
    expect(err.hint).toBe('declared environments: staging');
  });

  it('rejects a project name that is not a DNS label', () => {
    const err = validationError(() => loadDesiredHosts(issueExample, { project: 'Shop_1' }));
    expect(err.fieldErrors[0]?.path).toBe('project');
  });
});

describe('hosts.yaml validation errors carry line and column', () => {
  it('reports YAML syntax errors at their position', () => {
    const err = validationError(() => parseHostsFile('provider: digitalocean\nenvironments: [unclosed\n'));
    expect(err.message).toContain('is not valid YAML');
    expect(err.fieldErrors[0]).toMatchObject({ path: 'infra/hosts.yaml', line: expect.any(Number) });
  });

  it('reports a duplicate key', () => {
    const err = validationError(() => parseHostsFile(`${issueExample}    app-1: { role: app }\n`));
    expect(err.fieldErrors[0]?.message).toMatch(/unique|duplicate/i);
    expect(err.fieldErrors[0]?.line).toBe(12);
  });

  it('points an unknown field at its key', () => {
    const text = issueExample.replace('app-1: { role: app }', 'app-1: { role: app, sise: s-1vcpu-1gb }');
    const err = validationError(() => parseHostsFile(text));
    expect(err.fieldErrors).toEqual([
      { path: 'infra/hosts.yaml', message: 'environments.staging.app-1: unknown field "sise"', line: 10, column: 25 },
    ]);
  });

  it('reports every problem at once, in file order', () => {
    const text = `provider: aws
credentialsSecretRef: { name: do-token }
sshKey: { name: deploy, generate: true }
environments:
  Staging:
    app-1: { tags: [santokit-owner-x] }
`;
    const err = validationError(() => parseHostsFile(text, { path: 'infra/hosts.yaml' }));
    expect(err.fieldErrors.map((e) => [e.line, e.message])).toEqual([
      [1, 'provider: must be one of: digitalocean'],
      [2, 'credentialsSecretRef: missing required field "key"'],
      [3, 'sshKey: needs either name and privateKeySecretRef (an existing provider key), or generate: true'],
      [5, 'environments.Staging: an environment name must be a DNS label: lowercase letters, digits and dashes, starting with a letter, at most 40 characters'],
      [6, 'environments.Staging.app-1.tags.0: a tag may use letters, digits, colons, dashes and underscores, and must not start with santokit (reserved)'],
    ]);
    expect(err.message).toContain('infra/hosts.yaml:1:');
  });

  it('requires region, size and image on each host or under defaults', () => {
    const text = issueExample.replace('defaults: { region: nyc1, size: s-2vcpu-4gb, image: ubuntu-24-04-x64 }', 'defaults: { region: nyc1, image: ubuntu-24-04-x64 }');
    const err = validationError(() => parseHostsFile(text));
    expect(err.fieldErrors).toEqual([
      { path: 'infra/hosts.yaml', message: 'environments.staging.app-1: has no size; set it on the host or under defaults.size', line: 10, column: 12 },
    ]);
  });

  it('rejects two hosts that would get the same host name', () => {
    const text = `provider: digitalocean
credentialsSecretRef: { name: do-token, key: token }
defaults: { region: nyc1, size: s-1vcpu-1gb, image: ubuntu-24-04-x64 }
sshKey: { generate: true }
environments:
  a-b: { c: {} }
  a: { b-c: {} }
`;
    const err = validationError(() => parseHostsFile(text));
    expect(err.fieldErrors[0]?.message).toBe('environments.a-b.c: gives the same host name "a-b-c" as environments.a.b-c');
    expect(err.fieldErrors[0]?.line).toBe(6);
  });

  it('rejects an empty file', () => {
    const err = validationError(() => parseHostsFile('# nothing here\n'));
    expect(err.message).toContain('is empty');
  });

  it('rejects a Tailscale tag without the tag: prefix', () => {
    const err = validationError(() => parseHostsFile(issueExample.replace('tags: [tag:app]', 'tags: [app]')));
    expect(err.fieldErrors[0]?.message).toBe('bootstrap.tailscale.tags.0: must look like tag:name (lowercase letters, digits and dashes)');
    expect(err.fieldErrors[0]?.line).toBe(7);
  });
});

describe('naming and tags', () => {
  it('builds droplet names that are valid hostname labels', () => {
    expect(dropletName('shop', 'staging', 'app-1')).toBe('shop-staging-app-1');
    expect(dropletName('Shop', 'stag__ing', '-x-')).toBe('shop-stag-ing-x');
  });

  it('shortens long droplet names deterministically with a hash, keeping them distinct', () => {
    const a = dropletName('p'.repeat(50), 'e'.repeat(40), 'host-a');
    const b = dropletName('p'.repeat(50), 'e'.repeat(40), 'host-b');
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(a).not.toBe(b);
    expect(dropletName('p'.repeat(50), 'e'.repeat(40), 'host-a')).toBe(a);
  });

  it('derives managed, ownership and full tag sets', () => {
    expect(managedTags('prod')).toEqual(['santokit', 'santokit-env-prod']);
    expect(ownershipTag('6F1C0A4E-7B5B-4C3B-9E51-2D0C1F9A7E11')).toBe('santokit-owner-6f1c0a4e-7b5b-4c3b-9e51-2d0c1f9a7e11');
    expect(hostTags({ environment: 'prod', tags: ['web', 'santokit'] }, '6f1c0a4e-7b5b-4c3b-9e51-2d0c1f9a7e11')).toEqual([
      'santokit',
      'santokit-env-prod',
      'santokit-owner-6f1c0a4e-7b5b-4c3b-9e51-2d0c1f9a7e11',
      'web',
    ]);
  });

  it('refuses to build an ownership tag from something that is not a uid', () => {
    expect(() => ownershipTag('my tag!')).toThrow(ValidationError);
  });

  it('maps a desired host to the InfraHost spec with user tags only', () => {
    const [host] = desiredHosts(parseHostsFile(issueExample), { project: 'shop' });
    if (host === undefined) throw new Error('no host');
    expect(toInfraHostSpec(host)).toEqual({
      project: 'shop',
      environment: 'staging',
      host: 'app-1',
      role: 'app',
      provider: 'digitalocean',
      region: 'nyc1',
      size: 's-2vcpu-4gb',
      image: 'ubuntu-24-04-x64',
      tags: [],
      credentialsSecretRef: { name: 'do-token', key: 'token' },
      sshKey: { name: 'deploy', privateKeySecretRef: { name: 'deploy-ssh', key: 'id_ed25519' } },
      bootstrap: { docker: { enabled: true }, tailscale: { authKeySecretRef: { name: 'ts', key: 'authkey' }, tags: ['tag:app'] } },
      deletionPolicy: 'Delete',
    });
  });
});
