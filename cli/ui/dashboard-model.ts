import { findCondition } from '../../core/api/conditions.ts';
import { projectNamespace, type Connection, type Environment, type InfraHost, type Project, type Release, type ReleaseHistoryEntry } from '../../core/api/resources.ts';

/** What the dashboard sees of the cluster: every object of the kinds it shows. */
export interface ClusterSnapshot {
  projects: Project[];
  environments: Environment[];
  releases: Release[];
  connections: Connection[];
  hosts: InfraHost[];
  /** watches that are failing, by kind, for the footer */
  errors: Record<string, string>;
}

export interface ConnectionHealth {
  name: string;
  health: 'ok' | 'failing' | 'unknown';
  detail?: string;
}

export interface EnvView {
  name: string;
  namespace: string;
  current?: string;
  currentRef?: string;
  /** set while the operator is moving the env to another release */
  desired?: string;
  drift: 'clean' | 'drifted' | 'unknown';
  driftItems: string[];
  connections: ConnectionHealth[];
  ready: 'True' | 'False' | 'Unknown';
  readyMessage?: string;
  history: ReleaseHistoryEntry[];
}

export interface ReleaseView {
  id: string;
  ref: string;
  created: string;
  serving: string[];
}

export interface HostView {
  name: string;
  env: string;
  phase: string;
  ip?: string;
}

export interface ProjectView {
  name: string;
  namespace: string;
  ready: 'True' | 'False' | 'Unknown';
  envs: EnvView[];
  releases: ReleaseView[];
  hosts: HostView[];
}

const byName = <T extends { metadata: { name: string } }>(a: T, b: T) => a.metadata.name.localeCompare(b.metadata.name);

/** Projects → environments, releases (newest first, with the envs that serve each) and hosts. Pure. */
export function buildDashboard(s: ClusterSnapshot): ProjectView[] {
  return [...s.projects].sort(byName).map((p) => {
    const namespace = projectNamespace(p);
    const inNs = <T extends { metadata: { namespace?: string } }>(list: T[]) => list.filter((o) => o.metadata.namespace === namespace);
    const releases = inNs(s.releases);
    const envObjs = inNs(s.environments).sort(byName);
    const envs: EnvView[] = envObjs.map((e) => {
      const current = e.status?.currentRelease;
      const ready = findCondition(e.status, 'Ready');
      const ref = releases.find((r) => r.metadata.name === current)?.spec.ref;
      const connections = inNs(s.connections)
        .filter((c) => c.spec.environment === e.metadata.name)
        .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
        .map((c): ConnectionHealth => {
          const r = findCondition(c.status, 'Reachable');
          return { name: c.spec.name, health: r?.status === 'True' ? 'ok' : r?.status === 'False' ? 'failing' : 'unknown', ...(r?.message ? { detail: r.message } : {}) };
        });
      const driftItems = e.status?.drift ?? [];
      return {
        name: e.metadata.name,
        namespace,
        ...(current ? { current } : {}),
        ...(ref ? { currentRef: ref } : {}),
        ...(e.spec.release && e.spec.release !== current ? { desired: e.spec.release } : {}),
        drift: driftItems.length > 0 ? 'drifted' : e.status?.lastDriftCheck || current ? 'clean' : 'unknown',
        driftItems,
        connections,
        ready: ready?.status ?? 'Unknown',
        ...(ready?.message ? { readyMessage: ready.message } : {}),
        history: e.status?.history ?? [],
      };
    });
    const releaseViews = releases
      .map((r) => ({
        id: r.metadata.name,
        ref: r.spec.ref,
        created: r.metadata.creationTimestamp ?? '',
        serving: envs.filter((e) => e.current === r.metadata.name).map((e) => e.name),
      }))
      .sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id));
    const hosts = inNs(s.hosts)
      .map((h) => ({ name: h.spec.host || h.metadata.name, env: h.spec.environment, phase: h.status?.phase ?? 'Pending', ...(h.status?.publicIPv4 ? { ip: h.status.publicIPv4 } : {}) }))
      .sort((a, b) => a.env.localeCompare(b.env) || a.name.localeCompare(b.name));
    return { name: p.metadata.name, namespace, ready: findCondition(p.status, 'Ready')?.status ?? 'Unknown', envs, releases: releaseViews, hosts };
  });
}

/** What a promote or rollback of `env` to `to` would change, in one line. */
export function describeMove(action: 'promote' | 'rollback', env: EnvView, to: ReleaseView | undefined, toId: string): string {
  const from = env.current ?? 'no release';
  const ref = to?.ref ? ` (ref ${to.ref.slice(0, 12)}${to.serving.length ? `, served by ${to.serving.join(', ')}` : ''})` : '';
  const verb = action === 'promote' ? 'promote' : 'roll back';
  return `${verb} ${env.name}: ${from} → ${toId}${ref}`;
}
