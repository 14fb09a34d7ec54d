import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds, type Environment } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, adminKubeconfig, repoRoot, stk, expectExit } from '../support/cluster.ts';
import { startTerminal, type Terminal } from '../support/tmux.ts';
import { createUiWorld, permissions, schemaV1, type UiWorld } from './world.ts';

/**
 * The real `stk ui` in a real terminal (tmux, 120x40) against the local cluster and a running
 * operator: navigate to an environment, promote, confirm, and watch the pointer move on screen.
 */
const client = await adminClient();

describe('stk ui in a terminal', () => {
  let w: UiWorld;
  let release: string;
  let term: Terminal | undefined;

  beforeAll(async () => {
    w = await createUiWorld('uitmux');
    const ref = await w.repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1');
    const dev = await stk(['apply', ...w.inProject, '--env', 'dev', '--ref', ref, '--repo', w.repo.dir]);
    expectExit(dev);
    release = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(dev.stdout)![1]!;
    // prod's database gets the schema, not the pointer: promoting then only moves the pointer.
    const prod = await stk(['apply', ...w.inProject, '--env', 'prod', '--ref', ref, '--repo', w.repo.dir, '--only', 'schema']);
    expectExit(prod);
  });

  afterAll(async () => {
    await term?.close();
    await w?.stop();
  });

  it('navigates to prod, promotes the release dev serves, confirms, and shows prod serving it; q restores the shell', async () => {
    term = await startTerminal({
      argv: ['env', '-u', 'CI', `KUBECONFIG=${adminKubeconfig()}`, 'TERM=xterm-256color', 'NO_COLOR=1', process.execPath, path.join(repoRoot, 'dist/cli/main.js'), 'ui', '--project', w.project],
      width: 120,
      height: 40,
    });
    const t = term;

    await t.waitFor((s) => /› dev\s+rel-/.test(s) && /\n\s+prod\s+-\s/.test(s), 'the environments of the project');
    await t.send('Down');
    await t.waitFor((s) => /› prod/.test(s), 'prod selected');
    await t.send('p');
    await t.waitFor((s) => s.includes('promote into prod: choose a release') && s.includes(`› ${release}`), 'the release picker');
    await t.send('Enter');
    await t.waitFor((s) => s.includes(`promote prod: no release → ${release}`) && s.includes('served by dev') && s.includes('Promote? (y/N)'), 'the confirmation');
    expect((await client.get<Environment & KubeObject>(Kinds.Environment, 'prod', w.namespace)).status?.currentRelease).toBeUndefined();
    await t.send('y');

    const after = await t.waitFor((s) => s.includes(`environment prod now serves ${release}`) && new RegExp(`› prod\\s+${release}`).test(s), 'prod to serve the release', { timeoutMs: 60_000 });
    expect(after).toMatch(new RegExp(`dev\\s+${release}`));
    expect((await client.get<Environment & KubeObject>(Kinds.Environment, 'prod', w.namespace)).status?.currentRelease).toBe(release);

    await t.send('q');
    const shell = await t.waitFor((s) => s.includes('STK_EXITED='), 'stk ui to exit');
    expect(shell).toContain('STK_EXITED=0');
    // The alternate screen is gone: the dashboard left nothing behind on the terminal.
    expect(shell).not.toContain('promote into');
  });
});
