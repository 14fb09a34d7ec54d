import { describe, expect, it, vi } from 'vitest';
import type { Environment, Project, Release } from '../../../core/api/resources.ts';
import { buildDashboard } from '../dashboard-model.ts';
import { Dashboard, type DashboardActions, type DashboardSource } from './Dashboard.tsx';
import { renderPlain, tick } from './test-support.tsx';

const ready = { conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Succeeded', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' }] };
const project: Project = { apiVersion: 'santokit.io/v1alpha1', kind: 'Project', metadata: { name: 'shop' }, spec: {}, status: ready };
const env = (name: string, current?: string, history: string[] = []): Environment => ({
  apiVersion: 'santokit.io/v1alpha1',
  kind: 'Environment',
  metadata: { name, namespace: 'stk-shop' },
  spec: { project: 'shop', ...(current ? { release: current } : {}) },
  status: { ...ready, ...(current ? { currentRelease: current } : {}), history: history.map((r) => ({ release: r, ref: `${r}ref`, at: '2024-01-01T00:00:00Z', action: 'apply' as const })) },
});
const release = (id: string, created: string): Release => ({
  apiVersion: 'santokit.io/v1alpha1',
  kind: 'Release',
  metadata: { name: id, namespace: 'stk-shop', creationTimestamp: created },
  spec: { project: 'shop', ref: `${id.slice(4)}0000000000000000`, schema: {}, permissions: {} },
});

function fakeSource(): DashboardSource {
  const snapshot = {
    projects: buildDashboard({
      projects: [project],
      environments: [env('dev', 'rel-bbbb', ['rel-bbbb', 'rel-aaaa']), env('prod', 'rel-aaaa', ['rel-aaaa'])],
      releases: [release('rel-aaaa', '2024-01-01T00:00:00Z'), release('rel-bbbb', '2024-01-02T00:00:00Z')],
      connections: [],
      hosts: [],
      errors: {},
    }),
    errors: {},
    synced: true,
  };
  return { subscribe: () => () => undefined, getSnapshot: () => snapshot };
}

const down = '\u001B[B';

describe('Dashboard', () => {
  it('lists projects, opens one on Enter and shows its environments with current releases', async () => {
    const actions: DashboardActions = { promote: vi.fn(), rollback: vi.fn() };
    const { stdin, lastFrame } = renderPlain(<Dashboard source={fakeSource()} actions={actions} />);
    await tick();
    expect(lastFrame()).toContain('› shop');
    stdin.write('\r');
    await tick();
    expect(lastFrame()).toMatchInlineSnapshot(`
      "stk ui  project shop  1 Environments  2 Releases  3 InfraHosts  ? help  q quit
        ENV           RELEASE                 REF           DRIFT     READY   CONNECTIONS
      › dev           rel-bbbb                bbbb00000000  clean     True    -
        prod          rel-aaaa                aaaa00000000  clean     True    -
        p promote into dev  b roll back"
    `);
  });

  it('promotes into the selected env after a confirmation that shows the change', async () => {
    const promote = vi.fn(async () => 'environment prod now serves rel-bbbb');
    const { stdin, lastFrame } = renderPlain(<Dashboard source={fakeSource()} actions={{ promote, rollback: vi.fn() }} initialProject="shop" />);
    await tick();
    stdin.write(down);
    await tick();
    stdin.write('p');
    await tick();
    expect(lastFrame()).toContain('promote into prod: choose a release');
    stdin.write('\r');
    await tick();
    expect(lastFrame()).toContain('promote prod: rel-aaaa → rel-bbbb (ref bbbb00000000, served by dev)');
    expect(promote).not.toHaveBeenCalled();
    stdin.write('y');
    await tick();
    expect(promote).toHaveBeenCalledWith(expect.objectContaining({ name: 'shop' }), expect.objectContaining({ name: 'prod' }), 'rel-bbbb');
    expect(lastFrame()).toContain('environment prod now serves rel-bbbb');
  });

  it('rolls back only to releases the env served, and n cancels', async () => {
    const rollback = vi.fn();
    const { stdin, lastFrame } = renderPlain(<Dashboard source={fakeSource()} actions={{ promote: vi.fn(), rollback }} initialProject="shop" />);
    await tick();
    stdin.write('b');
    await tick();
    expect(lastFrame()).toContain('roll dev back to:');
    expect(lastFrame()).toContain('› rel-aaaa');
    stdin.write('\r');
    await tick();
    expect(lastFrame()).toContain('roll back dev: rel-bbbb → rel-aaaa');
    stdin.write('n');
    await tick();
    expect(rollback).not.toHaveBeenCalled();
    expect(lastFrame()).not.toContain('Roll back?');
  });

  it('switches to releases (who serves what) and shows help on ?', async () => {
    const { stdin, lastFrame } = renderPlain(<Dashboard source={fakeSource()} actions={{ promote: vi.fn(), rollback: vi.fn() }} initialProject="shop" />);
    await tick();
    stdin.write('2');
    await tick();
    expect(lastFrame()).toMatch(/rel-bbbb\s+bbbb00000000\s+dev/);
    expect(lastFrame()).toMatch(/rel-aaaa\s+aaaa00000000\s+prod/);
    stdin.write('?');
    await tick();
    expect(lastFrame()).toContain('q or ctrl-c  quit');
  });
});
