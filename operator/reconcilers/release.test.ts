import { describe, expect, it } from 'vitest';
import { findCondition } from '../../core/api/conditions.ts';
import type { Condition, Environment, EnvironmentStatus } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { commitStatusFor, environmentsServing, releaseConditions, releaseVerdicts, reportsDue, ReleaseReconciler } from './release.ts';

const ns = 'stk-demo';
const at = '2026-01-01T00:00:00Z';

function env(name: string, spec: { release?: string }, status: EnvironmentStatus = {}, namespace = ns): Environment & KubeObject {
  return { apiVersion: 'santokit.io/v1alpha1', kind: 'Environment', metadata: { name, namespace, generation: 2 }, spec: { project: 'demo', ...spec }, status };
}
const stalled = (reason: string, message: string): Condition[] => [
  { type: 'Ready', status: 'False', reason, message, lastTransitionTime: at },
  { type: 'Stalled', status: 'True', reason, message, lastTransitionTime: at },
];
const refused = (release: string, reason = 'DestructiveChange', message = 'the plan has destructive steps') =>
  ({ currentRelease: 'rel-old', lastRequest: { id: 'spec-2', action: 'apply', release, outcome: 'Failed', reason, message, retryable: false, generation: 2 }, conditions: stalled(reason, message) }) as EnvironmentStatus;

describe('release verdicts', () => {
  it('given environments of the namespace that want the release, when one serves it and one applies it, then those are their verdicts, by name', () => {
    const envs = [env('prod', { release: 'rel-a' }, { currentRelease: 'rel-b' }), env('dev', { release: 'rel-a' }, { currentRelease: 'rel-a' }), env('qa', { release: 'rel-b' }), env('dev', { release: 'rel-a' }, {}, 'other')];
    expect(releaseVerdicts(envs, ns, 'rel-a')).toEqual([
      { environment: 'dev', outcome: 'served' },
      { environment: 'prod', outcome: 'applying' },
    ]);
  });

  it('given a terminal refusal the environment still reports as Stalled, then the verdict is refused with its reason', () => {
    const [v] = releaseVerdicts([env('dev', { release: 'rel-a' }, refused('rel-a'))], ns, 'rel-a');
    expect(v).toEqual({ environment: 'dev', outcome: 'refused', reason: 'DestructiveChange', message: 'the plan has destructive steps' });
  });

  it('given a refusal the environment no longer reports (a new spec is being applied), then the verdict is applying', () => {
    const status = { ...refused('rel-a'), conditions: [{ type: 'Ready', status: 'Unknown', reason: 'Progressing', message: 'apply', lastTransitionTime: at }] } as EnvironmentStatus;
    expect(releaseVerdicts([env('dev', { release: 'rel-a' }, status)], ns, 'rel-a')).toEqual([{ environment: 'dev', outcome: 'applying' }]);
  });

  it('given a refusal of another release, then this one is still applying', () => {
    expect(releaseVerdicts([env('dev', { release: 'rel-a' }, refused('rel-z'))], ns, 'rel-a')).toEqual([{ environment: 'dev', outcome: 'applying' }]);
  });

  it('given a retryable failure, then the verdict is retrying', () => {
    const status: EnvironmentStatus = { lastRequest: { id: 'spec-2', action: 'apply', release: 'rel-a', outcome: 'Failed', reason: 'ConnectionFailed', message: 'connection main: refused', retryable: true } };
    expect(releaseVerdicts([env('dev', { release: 'rel-a' }, status)], ns, 'rel-a')).toEqual([{ environment: 'dev', outcome: 'retrying', reason: 'ConnectionFailed', message: 'connection main: refused' }]);
  });

  it('servedBy lists every environment whose current release it is, wanted or not', () => {
    const envs = [env('prod', {}, { currentRelease: 'rel-a' }), env('dev', { release: 'rel-b' }, { currentRelease: 'rel-a' }), env('qa', { release: 'rel-a' })];
    expect(environmentsServing(envs, ns, 'rel-a')).toEqual(['dev', 'prod']);
  });
});

describe('release conditions', () => {
  it('every environment that wants it serves it: Ready=True, Succeeded, naming them', () => {
    const out = releaseConditions(undefined, [{ environment: 'dev', outcome: 'served' }, { environment: 'prod', outcome: 'served' }], ['dev', 'prod'], 1);
    expect(out).toEqual([expect.objectContaining({ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'served by dev, prod', observedGeneration: 1 })]);
  });

  it('no environment wants it: Ready=True, Available, as before', () => {
    expect(findCondition({ conditions: releaseConditions(undefined, [], ['dev'], 1) }, 'Ready')).toMatchObject({ status: 'True', reason: 'Available', message: 'named by dev' });
    expect(findCondition({ conditions: releaseConditions(undefined, [], [], 1) }, 'Ready')).toMatchObject({ message: 'not named by any environment' });
  });

  it('a refusal wins over everything else: Stalled=True and Ready=False with the environment reason', () => {
    const out = releaseConditions(
      undefined,
      [{ environment: 'dev', outcome: 'served' }, { environment: 'prod', outcome: 'refused', reason: 'DestructiveChange', message: 'drop column' }, { environment: 'qa', outcome: 'applying' }],
      [],
      1,
    );
    expect(out.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ['Ready', 'False', 'DestructiveChange', 'environment prod: drop column'],
      ['Stalled', 'True', 'DestructiveChange', 'environment prod: drop column'],
    ]);
  });

  it('a retryable failure: Ready=False and Reconciling=True with its reason; an apply in flight: Reconciling, Progressing', () => {
    const retrying = releaseConditions(undefined, [{ environment: 'dev', outcome: 'retrying', reason: 'ConnectionFailed', message: 'down' }], [], 1);
    expect(retrying.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'ConnectionFailed'],
      ['Reconciling', 'True', 'ConnectionFailed'],
    ]);
    const applying = releaseConditions(undefined, [{ environment: 'dev', outcome: 'applying' }], [], 1);
    expect(applying.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ['Ready', 'Unknown', 'Progressing', 'environment dev is applying it'],
      ['Reconciling', 'True', 'Progressing', 'environment dev is applying it'],
    ]);
  });

  it('keeps other conditions (GitHubStatusReported) as they are', () => {
    const github: Condition = { type: 'GitHubStatusReported', status: 'False', reason: 'GitHubUnauthorized', message: 'bad token', lastTransitionTime: at };
    const out = releaseConditions([github], [{ environment: 'dev', outcome: 'served' }], [], 1);
    expect(out.map((c) => c.type)).toEqual(['Ready', 'GitHubStatusReported']);
  });
});

describe('commit statuses', () => {
  it('maps each verdict to a GitHub state with a description GitHub accepts', () => {
    expect(commitStatusFor({ environment: 'dev', outcome: 'served' }, 'rel-a')).toEqual({ environment: 'dev', state: 'success', description: 'release rel-a serves dev' });
    expect(commitStatusFor({ environment: 'dev', outcome: 'applying' }, 'rel-a')).toEqual({ environment: 'dev', state: 'pending', description: 'dev is applying release rel-a' });
    expect(commitStatusFor({ environment: 'dev', outcome: 'retrying', reason: 'ConnectionFailed', message: 'down' }, 'rel-a').state).toBe('error');
    const failure = commitStatusFor({ environment: 'dev', outcome: 'refused', reason: 'DestructiveChange', message: `the plan has destructive steps:\n  - ${'x'.repeat(300)}` }, 'rel-a');
    expect(failure.state).toBe('failure');
    expect(failure.description.startsWith('DestructiveChange: the plan has destructive steps: - x')).toBe(true);
    expect(failure.description.length).toBe(140);
  });

  it('redacts secrets from descriptions', () => {
    const out = commitStatusFor({ environment: 'dev', outcome: 'retrying', reason: 'ConnectionFailed', message: 'postgres://app:hunter2@db:5432/app refused' }, 'rel-a');
    expect(out.description).not.toContain('hunter2');
  });

  it('posts only what was not reported yet: same state and description once', () => {
    const reported = [{ environment: 'dev', state: 'pending' as const, description: 'dev is applying release rel-a' }];
    const wanted = [
      { environment: 'dev', state: 'pending' as const, description: 'dev is applying release rel-a' },
      { environment: 'prod', state: 'pending' as const, description: 'prod is applying release rel-a' },
    ];
    expect(reportsDue(wanted, reported)).toEqual([wanted[1]]);
    expect(reportsDue([{ environment: 'dev', state: 'success', description: 'release rel-a serves dev' }], reported)).toHaveLength(1);
  });
});

describe('environment watch', () => {
  it('re-checks the releases an environment names now and those it named before', () => {
    const watch = ReleaseReconciler.watchEnvironments();
    expect(watch.map(env('dev', { release: 'rel-a' }))).toEqual([`${ns}/rel-a`]);
    expect(watch.map(env('dev', { release: 'rel-b' }, { currentRelease: 'rel-c' })).sort()).toEqual([`${ns}/rel-a`, `${ns}/rel-b`, `${ns}/rel-c`]);
    expect(watch.map(env('dev', { release: 'rel-b' }, { currentRelease: 'rel-c' })).sort()).toEqual([`${ns}/rel-b`, `${ns}/rel-c`]);
  });
});
