import { render, renderToString } from 'ink';
import type { PipelineStep, PlannedConnection } from '../../core/api/resources.ts';
import { Dashboard, type DashboardActions, type DashboardSource } from './components/Dashboard.tsx';
import { InfraHosts } from './components/InfraHosts.tsx';
import { InfraHostsStore, type HostProgress } from './components/InfraHostsStore.ts';
import { PipelineSteps } from './components/PipelineSteps.tsx';
import { PlanDiff } from './components/PlanDiff.tsx';
import { PlanConfirm } from './components/PlanConfirm.tsx';
import { ColorProvider } from './components/theme.tsx';
import { PipelineStore } from './pipeline-store.ts';
import { colorEnabled } from './terminal.ts';

/**
 * The plain functions command code awaits; React state never leaks out of here
 * (the habit of Shopify's cli-kit: `renderTasks`, `renderConfirmationPrompt`).
 */

export interface PipelineHandle {
  /** the Environment's `status.steps` as last seen */
  update(steps: readonly PipelineStep[]): void;
  /** shows the outcome line and lets Ink print the last frame */
  finish(outcome: string): Promise<void>;
}

/** Draws the live pipeline of one request until `finish`. */
export function renderPipeline(title: string): PipelineHandle {
  const startedAt = Date.now();
  const store = new PipelineStore(startedAt);
  const app = render(
    <ColorProvider color={colorEnabled()}>
      <PipelineSteps title={title} store={store} startedAt={startedAt} />
    </ColorProvider>,
    { exitOnCtrlC: true, patchConsole: false },
  );
  return {
    update: (steps) => store.update(steps),
    async finish(outcome) {
      store.finish(outcome);
      await new Promise((r) => setTimeout(r, 20));
      app.unmount();
      await app.waitUntilExit();
    },
  };
}

export interface InfraHostsHandle {
  /** the latest reading of one host (see `hostProgress`); a settled host's row is final */
  update(progress: HostProgress): void;
  /** the progress last given for a host */
  last(key: string): HostProgress | undefined;
  /** stops the live rows and lets Ink print the last frame */
  finish(): Promise<void>;
}

/** Draws one live row per host of a `stk infra up` run until `finish`. */
export function renderInfraHosts(title: string, hosts: ReadonlyArray<{ key: string; label: string }>): InfraHostsHandle {
  const store = new InfraHostsStore(hosts, Date.now());
  const app = render(
    <ColorProvider color={colorEnabled()}>
      <InfraHosts title={title} store={store} />
    </ColorProvider>,
    { exitOnCtrlC: true, patchConsole: false },
  );
  return {
    update: (progress) => store.update(progress),
    last: (key) => store.last(key),
    async finish() {
      store.finish();
      await new Promise((r) => setTimeout(r, 20));
      app.unmount();
      await app.waitUntilExit();
    },
  };
}

/** Shows plans as a diff and asks a yes/no question; resolves with the answer. */
export async function renderPlanConfirm(plans: readonly PlannedConnection[], question: string): Promise<boolean> {
  let answer = false;
  const app = render(
    <ColorProvider color={colorEnabled()}>
      <PlanConfirm
        plans={plans}
        question={question}
        onAnswer={(yes) => {
          answer = yes;
          setTimeout(() => app.unmount(), 0);
        }}
      />
    </ColorProvider>,
    { exitOnCtrlC: true, patchConsole: false },
  );
  await app.waitUntilExit();
  return answer;
}

/** Runs the dashboard full screen until `q` or Ctrl-C; the terminal is restored on the way out. */
export async function renderDashboard(options: { source: DashboardSource; actions: DashboardActions; initialProject?: string | undefined }): Promise<void> {
  const app = render(
    <ColorProvider color={colorEnabled()}>
      <Dashboard source={options.source} actions={options.actions} initialProject={options.initialProject} />
    </ColorProvider>,
    { exitOnCtrlC: true, patchConsole: true, alternateScreen: true },
  );
  await app.waitUntilExit();
}

/** Plans as a coloured diff, for printing once under the pipeline. */
export function renderPlansToString(plans: readonly PlannedConnection[]): string {
  return renderToString(
    <ColorProvider color={colorEnabled()}>
      <PlanDiff plans={plans} showSql={false} />
    </ColorProvider>,
    { columns: process.stdout.columns ?? 100 },
  );
}
