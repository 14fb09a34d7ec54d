import { describe, expect, it } from 'vitest';
import { PipelineStore } from '../pipeline-store.ts';
import { PipelineSteps } from './PipelineSteps.tsx';
import { renderPlain, tick } from './test-support.tsx';

describe('PipelineSteps', () => {
  it('shows a waiting row until the operator writes steps', () => {
    const start = Date.now();
    const { lastFrame, unmount } = renderPlain(<PipelineSteps title="release rel-1 for p/dev" store={new PipelineStore(start)} startedAt={start} />);
    expect(lastFrame()).toContain('release rel-1 for p/dev');
    expect(lastFrame()).toMatch(/⠋ waiting for the operator \d+ms/);
    unmount();
  });

  it('ticks finished steps, spins on the running one, marks the pending ones; a failure shows its reason', async () => {
    let now = 1_000;
    const store = new PipelineStore(1_000, () => now);
    const { lastFrame, unmount } = renderPlain(<PipelineSteps title="release rel-1 for p/dev" store={store} startedAt={1_000} />);
    now = 2_500;
    store.update([
      { name: 'plan', connection: 'main', state: 'Succeeded', message: '1 step(s)' },
      { name: 'apply', connection: 'main', state: 'Running' },
      { name: 'permissions', state: 'Pending' },
    ]);
    await tick();
    expect(lastFrame()).toMatchInlineSnapshot(`
      "release rel-1 for p/dev
      ✔ plan main 1 step(s) 1.5s
      ⠋ apply main 0ms
      · permissions"
    `);
    now = 4_000;
    store.update([
      { name: 'plan', connection: 'main', state: 'Succeeded', message: '1 step(s)' },
      { name: 'apply', connection: 'main', state: 'Failed', reason: 'ApplyFailed', message: 'relation "users" already exists' },
      { name: 'permissions', state: 'Skipped' },
    ]);
    store.finish('apply refused (ApplyFailed)');
    await tick();
    expect(lastFrame()).toMatchInlineSnapshot(`
      "release rel-1 for p/dev
      ✔ plan main 1 step(s) 1.5s
      ✘ apply main ApplyFailed: relation "users" already exists 3.0s
      - permissions 3.0s
      apply refused (ApplyFailed)"
    `);
    unmount();
  });
});
