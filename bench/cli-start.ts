/**
 * Cold start of the built `stk` (dist/cli/main.js) against the locally built kubectl, in the same
 * run, interleaved (one kubectl, one stk, …) so that a busy machine weighs on both alike:
 * - `stk --help` vs `kubectl --help` (target: at most 1.5×),
 * - `stk env list` and `stk release list` vs `kubectl get environments -A` (target: at most 2×),
 *   against a running local cluster (KUBECONFIG; project from --project, STK_PROJECT or the first
 *   Project in the cluster),
 * - `stk ui` until its first frame, in a real terminal (tmux 120x40), then `q`.
 * Prints wall time (median, min) and CPU time (user+sys, median) of the whole process, and the
 * ratios of the medians.
 *
 * Usage: npm run build && node bench/cli-start.ts [--project NAME] [--runs N]
 * kubectl: SANTOKIT_KUBECTL (set by `source .santokit/cluster/env`), else the newest build in
 * ~/.cache/santokit/controlplane. CPU time and peak RSS come from GNU time (/usr/bin/time).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const stkMain = path.join(root, 'dist/cli/main.js');
const { values } = parseArgs({ options: { project: { type: 'string' }, runs: { type: 'string', default: '9' } } });
const runs = Number(values.runs);
const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

interface Sample { ms: number; cpuMs?: number; rssKb?: number }

function findKubectl(): string | undefined {
  if (process.env.SANTOKIT_KUBECTL && existsSync(process.env.SANTOKIT_KUBECTL)) return process.env.SANTOKIT_KUBECTL;
  const cache = path.join(process.env.SANTOKIT_CACHE_DIR ?? path.join(homedir(), '.cache/santokit'), 'controlplane');
  if (!existsSync(cache)) return undefined;
  const builds = readdirSync(cache)
    .map((d) => path.join(cache, d, 'bin/kubectl'))
    .filter((f) => existsSync(f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return builds[0];
}

/** One whole process: wall time measured here, CPU time and peak RSS from GNU time. */
function once(file: string, args: string[]): Sample {
  const start = process.hrtime.bigint();
  const res = gnuTime ? spawnSync(gnuTime, ['-f', '%U %S %M', file, ...args], { encoding: 'utf8' }) : spawnSync(file, args, { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (res.status !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  if (!gnuTime) return { ms };
  const [user, sys, rss] = res.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { ms, cpuMs: (user! + sys!) * 1000, rssKb: rss! };
}

const stk = (args: string[]) => once(process.execPath, [stkMain, ...args]);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function line(name: string, samples: Sample[]): { wall: number; cpu: number } {
  const wall = median(samples.map((s) => s.ms));
  const cpu = median(samples.map((s) => s.cpuMs ?? 0));
  const rss = Math.max(...samples.map((s) => s.rssKb ?? 0));
  console.log(
    `${name.padEnd(34)} wall median ${wall.toFixed(0).padStart(5)} ms  min ${Math.min(...samples.map((s) => s.ms)).toFixed(0).padStart(5)} ms  cpu ${cpu.toFixed(0).padStart(5)} ms  peak RSS ${(rss / 1024).toFixed(1)} MiB`,
  );
  return { wall, cpu };
}

/** Runs `base` and each of `cases` alternately, `runs` times after one warm-up each; prints ratios against base. */
function compare(base: { name: string; take: () => Sample }, cases: Array<{ name: string; take: () => Sample; target: number }>): void {
  base.take();
  for (const c of cases) c.take(); // warm the file cache: "cold" means a new process, not a cold disk
  const baseSamples: Sample[] = [];
  const caseSamples: Sample[][] = cases.map(() => []);
  for (let i = 0; i < runs; i++) {
    baseSamples.push(base.take());
    cases.forEach((c, j) => caseSamples[j]!.push(c.take()));
  }
  const b = line(base.name, baseSamples);
  cases.forEach((c, j) => {
    const r = line(c.name, caseSamples[j]!);
    const ratio = r.wall / b.wall;
    console.log(`${''.padEnd(34)} ${ratio.toFixed(2)}× ${base.name} (wall; cpu ${(r.cpu / b.cpu).toFixed(2)}×), target ≤ ${c.target}× ${ratio <= c.target ? 'met' : 'MISSED'}`);
  });
}

/** `stk ui` in tmux: time from launch until the first frame shows, and its peak RSS (VmHWM) then. */
function uiFirstFrame(project: string | undefined): Sample {
  const socket = `stk-bench-${process.pid}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'stk-bench-'));
  const pidFile = path.join(dir, 'pid');
  const tmux = (...a: string[]) => execFileSync('tmux', ['-L', socket, ...a], { encoding: 'utf8' });
  const env = `KUBECONFIG='${process.env.KUBECONFIG ?? ''}' NO_COLOR=1`;
  const start = process.hrtime.bigint();
  tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', 'b', `${env} sh -c 'echo $$ > ${pidFile}; exec ${process.execPath} ${stkMain} ui ${project ? `--project ${project}` : ''}'`);
  try {
    for (;;) {
      const screen = tmux('capture-pane', '-p', '-t', 'b');
      if (/ENV\s+RELEASE|PROJECT\s+NAMESPACE/.test(screen)) break;
      if (Number(process.hrtime.bigint() - start) / 1e6 > 30_000) throw new Error(`no first frame:\n${screen}`);
      execFileSync('sleep', ['0.02']);
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const pid = readFileSync(pidFile, 'utf8').trim();
    const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    tmux('send-keys', '-t', 'b', 'q');
    return { ms, ...(hwm ? { rssKb: Number(hwm) } : {}) };
  } finally {
    try {
      tmux('kill-server');
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(name: string, take: () => Sample): void {
  take();
  line(name, Array.from({ length: runs }, take));
}

function firstProject(kubectl: string): string | undefined {
  const out = spawnSync(kubectl, ['get', 'projects.santokit.io', '-o', 'jsonpath={.items[*].metadata.name}'], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim().split(/\s+/).filter(Boolean)[0] : undefined;
}

const kubectl = findKubectl();
const project = values.project ?? process.env.STK_PROJECT ?? (process.env.KUBECONFIG && kubectl ? firstProject(kubectl) : undefined);
console.log(`node ${process.version}, ${runs} runs each after one warm-up, kubectl ${kubectl ?? 'not found'}`);
if (!kubectl) {
  console.log('kubectl not found: run hack/cluster.sh up (it builds kubectl into ~/.cache/santokit) or set SANTOKIT_KUBECTL');
  report('stk --help', () => stk(['--help']));
} else {
  compare({ name: 'kubectl --help', take: () => once(kubectl, ['--help']) }, [{ name: 'stk --help', take: () => stk(['--help']), target: 1.5 }]);
  if (!process.env.KUBECONFIG) console.log('stk env list / release list skipped: set KUBECONFIG to a running cluster (source .santokit/cluster/env)');
  else if (!project) console.log('stk env list / release list skipped: no Project in the cluster (npm run demo makes one) and no --project');
  else {
    compare({ name: 'kubectl get environments -A', take: () => once(kubectl, ['get', 'environments', '-A']) }, [
      { name: `stk env list --project ${project}`, take: () => stk(['env', 'list', '--project', project]), target: 2 },
      { name: `stk release list --project ${project}`, take: () => stk(['release', 'list', '--project', project]), target: 2 },
    ]);
  }
}
if (!process.env.KUBECONFIG) console.log('stk ui (first frame)   skipped: set KUBECONFIG');
else if (process.env.BENCH_UI !== '0' && existsSync('/usr/bin/tmux')) report('stk ui (first frame)', () => uiFirstFrame(project));
