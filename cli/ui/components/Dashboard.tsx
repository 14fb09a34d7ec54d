import { Box, Text, useApp, useInput } from 'ink';
import { useState, useSyncExternalStore } from 'react';
import { describeMove, type EnvView, type ProjectView } from '../dashboard-model.ts';
import { Spinner } from './Spinner.tsx';
import { useTone } from './theme.tsx';

/** A live view of the cluster the dashboard subscribes to (informers in production, a fake in tests). */
export interface DashboardSource {
  subscribe(listener: () => void): () => void;
  getSnapshot(): { projects: ProjectView[]; errors: Record<string, string>; synced: boolean };
}

/** Moves the dashboard asks for; each resolves with a line to show, or throws with the reason. */
export interface DashboardActions {
  promote(project: ProjectView, env: EnvView, releaseId: string): Promise<string>;
  rollback(project: ProjectView, env: EnvView, releaseId: string): Promise<string>;
}

type Tab = 'envs' | 'releases' | 'hosts';
const tabs: Tab[] = ['envs', 'releases', 'hosts'];
const tabTitle: Record<Tab, string> = { envs: 'Environments', releases: 'Releases', hosts: 'InfraHosts' };

type Modal =
  | { kind: 'pick'; action: 'promote' | 'rollback'; env: string; options: Array<{ id: string; label: string }>; index: number }
  | { kind: 'confirm'; action: 'promote' | 'rollback'; env: string; to: string; summary: string }
  | { kind: 'running'; text: string };

const helpLines = [
  '↑/↓ or k/j   move',
  'enter        open a project / choose',
  'esc or ←     back',
  'tab or 1-3   environments, releases, hosts',
  'p            promote a release into the selected environment',
  'b            roll the selected environment back to a release it served',
  '?            this help',
  'q or ctrl-c  quit',
];

const pad = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

/** The `stk ui` screen: projects, then one project's environments, releases and hosts. */
export function Dashboard({ source, actions, initialProject }: { source: DashboardSource; actions: DashboardActions; initialProject?: string | undefined }) {
  const { exit } = useApp();
  const tone = useTone();
  const { projects, errors, synced } = useSyncExternalStore(source.subscribe, source.getSnapshot);
  const [openProject, setOpenProject] = useState<string | undefined>(initialProject);
  const [tab, setTab] = useState<Tab>('envs');
  const [cursor, setCursor] = useState(0);
  const [projectCursor, setProjectCursor] = useState(0);
  const [modal, setModal] = useState<Modal | undefined>();
  const [help, setHelp] = useState(false);
  const [message, setMessage] = useState<{ text: string; ok: boolean } | undefined>();

  const project = projects.find((p) => p.name === openProject);
  const rows = project ? (tab === 'envs' ? project.envs : tab === 'releases' ? project.releases : project.hosts).length : projects.length;
  const selectedEnv = project && tab === 'envs' ? project.envs[Math.min(cursor, project.envs.length - 1)] : undefined;
  const move = (delta: number) => {
    const set = project ? setCursor : setProjectCursor;
    set((c) => Math.max(0, Math.min(rows - 1, c + delta)));
  };

  const runAction = (action: 'promote' | 'rollback', envName: string, to: string) => {
    const p = project;
    const env = p?.envs.find((e) => e.name === envName);
    if (!p || !env) return;
    setModal({ kind: 'running', text: `${action === 'promote' ? 'promoting' : 'rolling back'} ${envName} to ${to}` });
    actions[action](p, env, to).then(
      (text) => {
        setModal(undefined);
        setMessage({ text, ok: true });
      },
      (err: unknown) => {
        setModal(undefined);
        setMessage({ text: err instanceof Error ? err.message : String(err), ok: false });
      },
    );
  };

  useInput((input, key) => {
    if (modal?.kind === 'running') return;
    if (modal?.kind === 'confirm') {
      if (input === 'y' || input === 'Y') runAction(modal.action, modal.env, modal.to);
      else if (input === 'n' || input === 'N' || key.escape || key.return) setModal(undefined);
      return;
    }
    if (modal?.kind === 'pick') {
      if (key.escape) return setModal(undefined);
      if (key.upArrow || input === 'k') return setModal({ ...modal, index: Math.max(0, modal.index - 1) });
      if (key.downArrow || input === 'j') return setModal({ ...modal, index: Math.min(modal.options.length - 1, modal.index + 1) });
      if (key.return) {
        const choice = modal.options[modal.index];
        const env = project?.envs.find((e) => e.name === modal.env);
        if (!choice || !env) return setModal(undefined);
        const summary = describeMove(modal.action, env, project?.releases.find((r) => r.id === choice.id), choice.id);
        return setModal({ kind: 'confirm', action: modal.action, env: modal.env, to: choice.id, summary });
      }
      return;
    }
    if (input === 'q') return exit();
    if (input === '?') return setHelp((h) => !h);
    if (help && key.escape) return setHelp(false);
    if (key.upArrow || input === 'k') return move(-1);
    if (key.downArrow || input === 'j') return move(1);
    if (!project) {
      if (key.return || key.rightArrow) {
        const p = projects[Math.min(projectCursor, projects.length - 1)];
        if (p) {
          setOpenProject(p.name);
          setTab('envs');
          setCursor(0);
          setMessage(undefined);
        }
      }
      return;
    }
    if (key.escape || key.leftArrow || key.backspace || key.delete) {
      setOpenProject(undefined);
      setMessage(undefined);
      return;
    }
    const tabIndex = key.tab ? (tabs.indexOf(tab) + (key.shift ? tabs.length - 1 : 1)) % tabs.length : ['1', '2', '3'].indexOf(input);
    if (tabIndex >= 0) {
      setTab(tabs[tabIndex]!);
      setCursor(0);
      return;
    }
    if (selectedEnv && input === 'p') {
      const options = project.releases
        .filter((r) => r.id !== selectedEnv.current)
        .map((r) => ({ id: r.id, label: `${r.id}  ${r.ref.slice(0, 12)}${r.serving.length ? `  served by ${r.serving.join(', ')}` : ''}` }));
      if (options.length === 0) return setMessage({ text: `no other release to promote into ${selectedEnv.name}`, ok: false });
      // Start on a release another environment serves: promoting is moving what works elsewhere.
      const served = options.findIndex((o) => project.releases.find((r) => r.id === o.id)?.serving.length);
      return setModal({ kind: 'pick', action: 'promote', env: selectedEnv.name, options, index: Math.max(0, served) });
    }
    if (selectedEnv && input === 'b') {
      const seen = new Set<string>();
      const options = selectedEnv.history
        .filter((h) => h.release !== selectedEnv.current && !seen.has(h.release) && seen.add(h.release))
        .map((h) => ({ id: h.release, label: `${h.release}  ${(h.ref ?? '').slice(0, 12)}  (${h.action})` }));
      if (options.length === 0) return setMessage({ text: `${selectedEnv.name} has served no other release`, ok: false });
      return setModal({ kind: 'pick', action: 'rollback', env: selectedEnv.name, options, index: 0 });
    }
  });

  const header = (
    <Box gap={2}>
      <Text bold color={tone('accent')}>
        stk ui
      </Text>
      <Text>{project ? `project ${project.name}` : 'projects'}</Text>
      {project ? (
        <Text>
          {tabs.map((t, i) => (
            <Text key={t} {...(t === tab ? { bold: true, underline: true } : { color: tone('muted') })}>
              {`${i + 1} ${tabTitle[t]}`}
              {i < tabs.length - 1 ? '  ' : ''}
            </Text>
          ))}
        </Text>
      ) : null}
      <Text color={tone('muted')}>? help  q quit</Text>
    </Box>
  );

  const line = (selected: boolean, text: string, color?: string) => (
    <Text key={text} wrap="truncate" {...(selected ? { inverse: true } : {})} {...(color ? { color } : {})}>
      {selected ? '› ' : '  '}
      {text}
    </Text>
  );

  let body;
  if (!synced) body = <Text><Spinner color={tone('accent')} /> loading the cluster…</Text>;
  else if (!project) {
    body = (
      <Box flexDirection="column">
        <Text bold>{`  ${pad('PROJECT', 28)}${pad('NAMESPACE', 30)}${pad('READY', 8)}ENVS`}</Text>
        {projects.length === 0 ? <Text color={tone('muted')}>  no projects: create one with `stk project create NAME`</Text> : null}
        {projects.map((p, i) => line(i === projectCursor, `${pad(p.name, 28)}${pad(p.namespace, 30)}${pad(p.ready, 8)}${p.envs.map((e) => e.name).join(', ')}`))}
      </Box>
    );
  } else if (tab === 'envs') {
    body = (
      <Box flexDirection="column">
        <Text bold>{`  ${pad('ENV', 14)}${pad('RELEASE', 24)}${pad('REF', 14)}${pad('DRIFT', 10)}${pad('READY', 8)}CONNECTIONS`}</Text>
        {project.envs.map((e, i) => {
          const conns = e.connections.map((c) => `${c.name}:${c.health}`).join(' ') || '-';
          const release = e.desired ? `${e.current ?? '-'} → ${e.desired}` : (e.current ?? '-');
          const color = e.drift === 'drifted' || e.connections.some((c) => c.health === 'failing') ? tone('warn') : undefined;
          return line(i === cursor, `${pad(e.name, 14)}${pad(release, 24)}${pad((e.currentRef ?? '-').slice(0, 12), 14)}${pad(e.drift, 10)}${pad(e.ready, 8)}${conns}`, color);
        })}
        {selectedEnv && selectedEnv.drift === 'drifted' ? <Text color={tone('warn')}>  drift: {selectedEnv.driftItems.join('; ')}</Text> : null}
        {selectedEnv && selectedEnv.ready === 'False' && selectedEnv.readyMessage ? <Text color={tone('muted')}>  {selectedEnv.readyMessage}</Text> : null}
        <Text color={tone('muted')}>  p promote into {selectedEnv?.name ?? 'env'}  b roll back</Text>
      </Box>
    );
  } else if (tab === 'releases') {
    body = (
      <Box flexDirection="column">
        <Text bold>{`  ${pad('RELEASE', 24)}${pad('REF', 14)}SERVING`}</Text>
        {project.releases.map((r, i) => line(i === cursor, `${pad(r.id, 24)}${pad(r.ref.slice(0, 12), 14)}${r.serving.join(', ') || '-'}`, r.serving.length ? tone('ok') : undefined))}
      </Box>
    );
  } else {
    body = (
      <Box flexDirection="column">
        <Text bold>{`  ${pad('HOST', 24)}${pad('ENV', 14)}${pad('PHASE', 16)}IP`}</Text>
        {project.hosts.length === 0 ? <Text color={tone('muted')}>  no hosts</Text> : null}
        {project.hosts.map((h, i) =>
          line(i === cursor, `${pad(h.name, 24)}${pad(h.env, 14)}${pad(h.phase, 16)}${h.ip ?? '-'}`, h.phase === 'Ready' ? tone('ok') : h.phase === 'Failed' ? tone('fail') : tone('warn')),
        )}
      </Box>
    );
  }

  return (
    <Box flexDirection="column">
      {header}
      {help ? (
        <Box flexDirection="column" borderStyle="round" paddingX={1}>
          {helpLines.map((l) => (
            <Text key={l}>{l}</Text>
          ))}
        </Box>
      ) : null}
      {body}
      {modal?.kind === 'pick' ? (
        <Box flexDirection="column" borderStyle="round" paddingX={1}>
          <Text bold>{modal.action === 'promote' ? `promote into ${modal.env}: choose a release` : `roll ${modal.env} back to:`}</Text>
          {modal.options.map((o, i) => line(i === modal.index, o.label))}
          <Text color={tone('muted')}>enter choose  esc cancel</Text>
        </Box>
      ) : null}
      {modal?.kind === 'confirm' ? (
        <Box flexDirection="column" borderStyle="round" paddingX={1}>
          <Text>{modal.summary}</Text>
          <Text color={tone('muted')}>{modal.action === 'promote' ? 'no DDL runs: its databases must already satisfy the release' : 'no DDL is undone'}</Text>
          <Text>
            <Text color={tone('warn')}>?</Text> {modal.action === 'promote' ? 'Promote' : 'Roll back'}? (y/N)
          </Text>
        </Box>
      ) : null}
      {modal?.kind === 'running' ? (
        <Text>
          <Spinner color={tone('accent')} /> {modal.text}
        </Text>
      ) : null}
      {message ? <Text color={message.ok ? tone('ok') : tone('fail')}>{message.text}</Text> : null}
      {Object.entries(errors).map(([kind, err]) => (
        <Text key={kind} color={tone('fail')} wrap="truncate">
          watch {kind}: {err}
        </Text>
      ))}
    </Box>
  );
}
