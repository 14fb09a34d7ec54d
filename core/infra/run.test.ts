import { describe, expect, it } from 'vitest';
import { bootstrapColumn, currentRun, exitCodeFor, formatRun, hostOutcome, parseRun, runAction, type HostOutcome, type HostStatusView } from './run.ts';

const T = '2026-01-01T00:00:00Z';
const cond = (type: string, status: string, reason = 'R', message = 'm') => ({ type, status, reason, message, lastTransitionTime: T });

describe('run record', () => {
  it('round-trips, with keys in a fixed order', () => {
    const text = formatRun({ handled: true, bootstrap: 'ok', created: true, generation: 3, request: 'abc' } as never);
    expect(text).toBe('{"request":"abc","generation":3,"created":true,"bootstrap":"ok","handled":true}');
    expect(parseRun(text)).toEqual({ request: 'abc', generation: 3, created: true, bootstrap: 'ok', handled: true });
  });

  it('ignores text that is not a run record', () => {
    expect(parseRun(undefined)).toBeUndefined();
    expect(parseRun('not json')).toBeUndefined();
    expect(parseRun('{"request":1}')).toBeUndefined();
  });

  it('continues the recorded run only for the same request and generation', () => {
    const recorded = { request: 'a', generation: 2, created: true, handled: true };
    expect(currentRun(recorded, 'a', 2)).toEqual(recorded);
    expect(currentRun(recorded, 'b', 2)).toEqual({ request: 'b', generation: 2 });
    expect(currentRun(recorded, 'a', 3)).toEqual({ request: 'a', generation: 3 });
    expect(currentRun(undefined, undefined, undefined)).toEqual({ request: '', generation: 0 });
  });

  it('names the action: created wins over reconciled, else unchanged', () => {
    expect(runAction({ request: '', generation: 1, created: true, reconciled: true })).toBe('created');
    expect(runAction({ request: '', generation: 1, reconciled: true })).toBe('reconciled');
    expect(runAction({ request: '', generation: 1 })).toBe('unchanged');
  });
});

describe('host outcome and exit code', () => {
  const ready: HostStatusView = { conditions: [cond('Ready', 'True')] };
  const dockerFailed: HostStatusView = {
    phase: 'Failed',
    steps: { ssh: 'ready', docker: 'docker_install_failed', network: 'not_run' },
    conditions: [cond('Ready', 'False', 'DockerInstallFailed'), cond('Bootstrapped', 'False', 'DockerInstallFailed', 'docker_install_failed: apt-get exited 100')],
  };
  const configInvalid: HostStatusView = { phase: 'Failed', steps: { config: 'config_invalid' }, conditions: [cond('Ready', 'False', 'ConfigInvalid', 'token missing'), cond('Stalled', 'True')] };
  const cloudDown: HostStatusView = { phase: 'Failed', conditions: [cond('Ready', 'False', 'CloudUnavailable', 'DigitalOcean answered 503')] };

  it('reads each status as one outcome', () => {
    expect(hostOutcome(ready)).toEqual({ kind: 'ready' });
    expect(hostOutcome(dockerFailed)).toEqual({ kind: 'bootstrapFailed', code: 'docker_install_failed', message: 'docker_install_failed: apt-get exited 100' });
    expect(hostOutcome(configInvalid)).toEqual({ kind: 'configInvalid', message: 'token missing' });
    expect(hostOutcome(cloudDown)).toEqual({ kind: 'cloudFailed', reason: 'CloudUnavailable', message: 'DigitalOcean answered 503' });
    expect(hostOutcome(undefined).kind).toBe('pending');
  });

  it('exits 0 / 10 / 3 / 1 as DESIGN §5 says', () => {
    const o = (s: HostStatusView): HostOutcome => hostOutcome(s);
    expect(exitCodeFor([o(ready), o(ready)])).toBe(0);
    expect(exitCodeFor([o(ready), o(dockerFailed)])).toBe(10);
    expect(exitCodeFor([o(dockerFailed)])).toBe(3);
    expect(exitCodeFor([o(ready), o(cloudDown)])).toBe(3);
    expect(exitCodeFor([o(cloudDown), o(configInvalid)])).toBe(1);
    expect(exitCodeFor([])).toBe(0);
  });

  it('fills the BOOTSTRAP column', () => {
    expect([ready, dockerFailed, configInvalid, cloudDown, {}].map((s) => bootstrapColumn(hostOutcome(s)))).toEqual(['ok', 'docker_install_failed', 'config_invalid', 'not_run', 'pending']);
  });
});
