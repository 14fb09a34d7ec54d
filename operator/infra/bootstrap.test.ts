import { describe, expect, it } from 'vitest';
import { commands, parseTailscaleStatus, stepCodes, type BootstrapResult } from './bootstrap.ts';

describe('bootstrap commands', () => {
  it('builds the join command with the key read from stdin, never inline', () => {
    expect(commands.tailscaleJoin('shop-staging-app-1', ['tag:app', 'tag:db'], false)).toBe(
      'tailscale up --auth-key=file:/dev/stdin --hostname=shop-staging-app-1 --advertise-tags=tag:app,tag:db --reset',
    );
    expect(commands.tailscaleJoin('h', [], true)).toBe('tailscale up --auth-key=file:/dev/stdin --hostname=h --reset --force-reauth');
  });

  it('reads state, tags and addresses from tailscale status --json', () => {
    const out = JSON.stringify({ BackendState: 'Running', Self: { Tags: ['tag:b', 'tag:a'], TailscaleIPs: ['100.64.0.1'] } });
    expect(parseTailscaleStatus(out)).toEqual({ state: 'Running', tags: ['tag:a', 'tag:b'], ips: ['100.64.0.1'] });
    expect(parseTailscaleStatus(JSON.stringify({ BackendState: 'NeedsLogin', Self: null }))).toEqual({ state: 'NeedsLogin', tags: [], ips: [] });
    expect(parseTailscaleStatus('not json')).toBeUndefined();
    expect(parseTailscaleStatus('{}')).toBeUndefined();
  });

  it('turns a result into the status.steps map', () => {
    const result: BootstrapResult = {
      ok: false,
      changed: true,
      failure: { step: 'docker', code: 'docker_install_failed', message: 'apt-get exited 100' },
      steps: [
        { step: 'ssh', ok: true, changed: false, code: 'ready' },
        { step: 'docker', ok: false, changed: false, code: 'docker_install_failed' },
        { step: 'network', ok: false, changed: false, code: 'not_run' },
      ],
      commands: [],
    };
    expect(stepCodes(result)).toEqual({ ssh: 'ready', docker: 'docker_install_failed', network: 'not_run' });
  });
});
