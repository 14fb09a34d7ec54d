/**
 * Cold start of the built `stk` (dist/cli/main.js): wall time and peak RSS of
 * - `stk --help` (must not load React or Ink),
 * - `stk release list` against a running local cluster (KUBECONFIG, STK_PROJECT or --project),
 * - `stk ui` until its first frame, in a real terminal (tmux 120x40), then `q`.
 *
 * Usage: npm run build && node bench/cli-start.ts [--project NAME] [--runs N]
 * Peak RSS comes from GNU time (/usr/bin/time -f %M) when present.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const stkMain = path.join(root, 'dist/cli/main.js');
const { values } = parseArgs({ options: { project: { type: 'string' }, runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const project = values.project ?? process.env.STK_PROJECT;
const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

interface Sample { ms: number; rssKb?: number }

function once(args: string[]): Sample {
  const start = process.hrtime.bigint();
  const res = gnuTime
    ? spawnSync(gnuTime, ['-f', '%M', process.execPath, stkMain, ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, [stkMain, ...args], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (res.status !== 0) throw new Error(`stk ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  const rss = gnuTime ? Number(res.stderr.trim().split('\n').at(-1)) : undefined;
  return { ms, ...(rss ? { rssKb: rss } : {}) };
}

/** `stk ui` in tmux: time from launch until the first frame shows, and its peak RSS (VmHWM) then. */
function uiFirstFrame(): Sample {
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
  take(); // warm the file cache: "cold" means a new process, not a cold disk
  const samples = Array.from({ length: runs }, take);
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const rss = samples.map((s) => s.rssKb ?? 0);
  const median = ms[Math.floor(ms.length / 2)]!;
  console.log(`${name.padEnd(22)} median ${median.toFixed(0).padStart(5)} ms  min ${ms[0]!.toFixed(0).padStart(5)} ms  max ${ms.at(-1)!.toFixed(0).padStart(5)} ms  peak RSS ${(Math.max(...rss) / 1024).toFixed(1)} MiB`);
}

console.log(`node ${process.version}, ${runs} runs each (after one warm-up)`);
report('stk --help', () => once(['--help']));
if (!process.env.KUBECONFIG) console.log('stk release list       skipped: set KUBECONFIG to a running cluster (hack/cluster.sh up)');
else if (!project) console.log('stk release list       skipped: pass --project NAME');
else report('stk release list', () => once(['release', 'list', '--project', project]));
if (!process.env.KUBECONFIG) console.log('stk ui (first frame)   skipped: set KUBECONFIG');
else report('stk ui (first frame)', uiFirstFrame);
