import type { Logger } from 'pino';
import { Kinds, type Connection, type Environment, type InfraHost, type KindInfo, type Project, type Release } from '../../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { Informer } from '../../core/kube/informer.ts';
import { outcomeError, requestEnvironmentChange } from '../release-requests.ts';
import type { DashboardActions, DashboardSource } from './components/Dashboard.tsx';
import { buildDashboard, type ClusterSnapshot, type ProjectView } from './dashboard-model.ts';

// The informer reports through events; the dashboard shows failing watches in its footer instead of logging.
const quiet = { warn() {}, info() {}, debug() {}, error() {}, child: () => quiet } as unknown as Logger;

type Snapshot = ReturnType<DashboardSource['getSnapshot']>;

/** The cluster as the dashboard sees it: one list+watch informer per kind, across namespaces. */
export class ClusterDashboardSource implements DashboardSource {
  private readonly informers: Record<keyof Omit<ClusterSnapshot, 'errors'>, Informer>;
  private readonly listeners = new Set<() => void>();
  private readonly errors: Record<string, string> = {};
  private snapshot: Snapshot = { projects: [], errors: {}, synced: false };
  private pending: NodeJS.Timeout | undefined;

  constructor(client: KubeClient) {
    const make = (kind: KindInfo) => new Informer(client, kind, quiet, { backoff: { initialMs: 500, maxMs: 10_000 } });
    this.informers = {
      projects: make(Kinds.Project),
      environments: make(Kinds.Environment),
      releases: make(Kinds.Release),
      connections: make(Kinds.Connection),
      hosts: make(Kinds.InfraHost),
    };
    for (const informer of Object.values(this.informers)) {
      const changed = () => {
        delete this.errors[informer.kind.kind];
        this.schedule();
      };
      informer.on('upsert', changed).on('delete', changed).on('synced', changed);
      informer.on('error', (err: unknown) => {
        this.errors[informer.kind.kind] = err instanceof Error ? err.message : String(err);
        this.schedule();
      });
    }
  }

  start(): void {
    for (const i of Object.values(this.informers)) i.start();
  }

  stop(): void {
    if (this.pending) clearTimeout(this.pending);
    for (const i of Object.values(this.informers)) i.stop();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): Snapshot => this.snapshot;

  // Bursts of events (a relist) collapse into one redraw.
  private schedule(): void {
    this.pending ??= setTimeout(() => {
      this.pending = undefined;
      const i = this.informers;
      const list = <T>(inf: Informer) => inf.list() as unknown as T[];
      const projects: ProjectView[] = buildDashboard({
        projects: list<Project>(i.projects),
        environments: list<Environment>(i.environments),
        releases: list<Release>(i.releases),
        connections: list<Connection>(i.connections),
        hosts: list<InfraHost>(i.hosts),
        errors: this.errors,
      });
      this.snapshot = { projects, errors: { ...this.errors }, synced: i.projects.synced && i.environments.synced && i.releases.synced };
      for (const l of this.listeners) l();
    }, 30);
  }
}

/** Promote and rollback as `stk release promote|rollback` do them: a request on the Environment, answered by the operator. */
export function clusterActions(client: KubeClient, timeoutMs = 120_000): DashboardActions {
  const move = async (action: 'promote' | 'rollback', namespace: string, env: string, release: string) => {
    const { outcome } = await requestEnvironmentChange(client, namespace, env, { action, release }, { setDesired: true, timeoutMs });
    if (outcome.outcome === 'Failed') throw outcomeError(outcome);
  };
  return {
    async promote(project, env, releaseId) {
      await move('promote', project.namespace, env.name, releaseId);
      return `environment ${env.name} now serves ${releaseId}`;
    },
    async rollback(project, env, releaseId) {
      await move('rollback', project.namespace, env.name, releaseId);
      return `environment ${env.name} rolled back to ${releaseId}`;
    },
  };
}

export type { KubeObject };
