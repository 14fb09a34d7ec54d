import { describe, expect, it } from 'vitest';
import type { Connection, Environment } from '../../core/api/resources.ts';
import { buildDashboard } from './dashboard-model.ts';

const cond = (type: string, status: 'True' | 'False', message = '') => ({ type, status, reason: 'X', message, lastTransitionTime: '2024-01-01T00:00:00Z' });

describe('buildDashboard', () => {
  it('reports drift, connection health and a pointer on its way to another release', () => {
    const env: Environment = {
      apiVersion: 'v', kind: 'Environment', metadata: { name: 'dev', namespace: 'stk-p' },
      spec: { project: 'p', release: 'rel-new' },
      status: { currentRelease: 'rel-old', drift: ['main: extra column users.sneaky'], conditions: [cond('Ready', 'True')] },
    };
    const conn = (name: string, ok: boolean): Connection => ({
      apiVersion: 'v', kind: 'Connection', metadata: { name: `dev-${name}`, namespace: 'stk-p' },
      spec: { project: 'p', environment: 'dev', name, engine: 'postgres' },
      status: { conditions: [cond('Reachable', ok ? 'True' : 'False', ok ? '' : 'connection refused')] },
    });
    const [view] = buildDashboard({
      projects: [{ apiVersion: 'v', kind: 'Project', metadata: { name: 'p' }, spec: {} }],
      environments: [env], releases: [], connections: [conn('main', true), conn('audit', false)], hosts: [], errors: {},
    });
    expect(view!.envs[0]).toMatchObject({
      name: 'dev', current: 'rel-old', desired: 'rel-new', drift: 'drifted',
      connections: [{ name: 'audit', health: 'failing', detail: 'connection refused' }, { name: 'main', health: 'ok' }],
    });
  });
});
