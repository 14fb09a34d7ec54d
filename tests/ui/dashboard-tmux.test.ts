import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, adminKubeconfig, eventually, repoRoot, runCommand, stk, uniqueName } from '../support/cluster.ts';
import { createUiWorld, permissions, schemaV1, type UiWorld } from './world.ts';

/**
 * The real `stk ui` in a real terminal (tmux, 120x40) against the local cluster and a running
 * operator: navigate to an environment, promote, confirm, and watch the pointer move on screen.
 */
const client = await adminClient();
const socket = uniqueName('stk-ui-test');
const tmux = (...args: string[]) => runCommand('tmux', ['-L', socket, ...args], { timeoutMs: 10_000 });
const screen = async () => (await tmux('capture-pane', '-p', '-t', 'ui')).stdout;

async function waitForScreen(test: (text: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> {
  let last = '';
  try {
    return await eventually(
      async () => {
        last = await screen();
        return test(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 150, what },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- screen ---\n${last}`);
  }
}

describe('stk ui in a terminal', () => {
  let w: UiWorld;
  let release: string;

  beforeAll(async () => {
    w = await createUiWorld('uitmux');
    const ref = await w.repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    const dev = await stk(['apply', ...w.inProject, '--env', 'dev', '--ref', ref, '--repo', w.repo.dir]);
    expect(dev.code, dev.stderr).toBe(0);
    release = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(dev.stdout)![1]!;
    // prod's database gets the schema, not the pointer: promoting then only moves the pointer.
    const prod = await stk(['apply', ...w.inProject, '--env', 'prod', '--ref', ref, '--repo', w.repo.dir, '--only', 'schema']);
    expect(prod.code, prod.stderr).toBe(0);
  });

  afterAll(async () => {
    await tmux('kill-server');
    await w?.stop();
  });

  it('navigates to prod, promotes the release dev serves, confirms, and shows prod serving it; q restores the shell', async () => {
    const command = [
      'env', '-u', 'CI', `KUBECONFIG=${adminKubeconfig()}`, 'TERM=xterm-256color', 'NO_COLOR=1',
      process.execPath, path.join(repoRoot, 'dist/cli/main.js'), 'ui', '--project', w.project,
    ].map((a) => `'${a}'`).join(' ');
    const started = await tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', 'ui', `${command}; echo STK_EXITED=$?; sleep 120`);
    expect(started.code, started.stderr).toBe(0);

    await waitForScreen((s) => /› dev\s+rel-/.test(s) && /\n\s+prod\s+-\s/.test(s), 'the environments of the project');
    await tmux('send-keys', '-t', 'ui', 'Down');
    await waitForScreen((s) => /› prod/.test(s), 'prod selected');
    await tmux('send-keys', '-t', 'ui', 'p');
    await waitForScreen((s) => s.includes('promote into prod: choose a release') && s.includes(`› ${release}`), 'the release picker');
    await tmux('send-keys', '-t', 'ui', 'Enter');
    await waitForScreen((s) => s.includes(`promote prod: no release → ${release}`) && s.includes('served by dev') && s.includes('Promote? (y/N)'), 'the confirmation');
    expect((await client.get<Environment & KubeObject>(Kinds.Environment, 'prod', w.namespace)).status?.currentRelease).toBeUndefined();
    await tmux('send-keys', '-t', 'ui', 'y');

    const after = await waitForScreen((s) => s.includes(`environment prod now serves ${release}`) && new RegExp(`› prod\\s+${release}`).test(s), 'prod to serve the release', 60_000);
    expect(after).toMatch(new RegExp(`dev\\s+${release}`));
    expect((await client.get<Environment & KubeObject>(Kinds.Environment, 'prod', w.namespace)).status?.currentRelease).toBe(release);

    await tmux('send-keys', '-t', 'ui', 'q');
    const shell = await waitForScreen((s) => s.includes('STK_EXITED='), 'stk ui to exit');
    expect(shell).toContain('STK_EXITED=0');
    // The alternate screen is gone: the dashboard left nothing behind on the terminal.
    expect(shell).not.toContain('promote into');
  });
});
