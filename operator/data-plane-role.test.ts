import { describe, expect, it } from 'vitest';
import { dataPlaneRoleName, dataPlaneUrl, grantsFingerprint, ident, managedTablesOfReleases, readDataPlaneCredential, tablesByConnection, scramVerifier, splitTableName } from './data-plane-role.ts';

describe('the data-plane role', () => {
  const conn = { apiVersion: 'santokit.io/v1alpha1', kind: 'Connection', metadata: { name: 'dev-main', namespace: 'stk-shop', uid: 'uid-1' }, spec: { project: 'shop', environment: 'dev', name: 'main', engine: 'postgres' as const } };
  const secretOf = (overrides: { labels?: Record<string, string>; owner?: string; url?: string } = {}) => ({
    metadata: {
      name: 'santokit-dataplane-dev-main',
      namespace: 'stk-shop',
      resourceVersion: '7',
      labels: overrides.labels ?? { 'santokit.io/data-plane-credential': 'true' },
      ownerReferences: [{ uid: overrides.owner ?? 'uid-1' }],
    },
    data: { url: Buffer.from(overrides.url ?? 'postgres://stk_dp_x:pw@db:5432/app').toString('base64') },
  });

  it('names the role after the Connection uid, within Postgres identifier limits', () => {
    const name = dataPlaneRoleName(conn);
    expect(name).toMatch(/^stk_dp_[0-9a-f]{24}$/);
    expect(dataPlaneRoleName({ metadata: { ...conn.metadata, uid: 'uid-2' } })).not.toBe(name);
  });

  it('keeps host, port, database and parameters of the owner URL, with the role as user', () => {
    const url = new URL(dataPlaneUrl('postgres://owner:secret@db.example:6543/app?sslmode=require', 'stk_dp_abc', 'p@ss/word'));
    expect([url.username, url.hostname, url.port, url.pathname, url.searchParams.get('sslmode')]).toEqual(['stk_dp_abc', 'db.example', '6543', '/app', 'require']);
    expect(decodeURIComponent(url.password)).toBe('p@ss/word');
  });

  it('reads the managed tables of the current and desired releases, `schema.table` outside public', () => {
    const release = (tables: string[]) => tablesByConnection({ main: { tables: Object.fromEntries(tables.map((t) => [t, {}])) }, other: { tables: { elsewhere: {} } } });
    expect(managedTablesOfReleases([release(['users', 'posts']), release(['users', 'audit.events']), undefined], 'main')).toEqual(['audit.events', 'posts', 'users']);
    expect(splitTableName('users')).toEqual(['public', 'users']);
    expect(splitTableName('audit.events')).toEqual(['audit', 'events']);
  });

  it('quotes identifiers, so a table name cannot break out of a statement', () => {
    expect(ident('users')).toBe('"users"');
    expect(ident('a"; DROP TABLE x; --')).toBe('"a""; DROP TABLE x; --"');
  });

  it('writes a SCRAM-SHA-256 verifier, never the password', () => {
    const verifier = scramVerifier('hunter2');
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(verifier).not.toContain('hunter2');
  });

  it('changes the grants fingerprint with the role or the tables', () => {
    const base = grantsFingerprint('r', ['users']);
    expect(grantsFingerprint('r', ['users'])).toBe(base);
    expect(grantsFingerprint('r2', ['users'])).not.toBe(base);
    expect(grantsFingerprint('r', ['users', 'posts'])).not.toBe(base);
  });

  it('uses a credential Secret only when the operator wrote it for this very Connection', () => {
    const found = readDataPlaneCredential(conn, () => secretOf());
    expect(found?.version).toBe('uid-1/7');
    expect(found?.url()).toBe('postgres://stk_dp_x:pw@db:5432/app');
    expect(readDataPlaneCredential(conn, () => secretOf({ owner: 'someone-else' }))).toBeUndefined();
    expect(readDataPlaneCredential(conn, () => secretOf({ labels: {} }))).toBeUndefined();
    expect(readDataPlaneCredential(conn, () => undefined)).toBeUndefined();
  });
});
