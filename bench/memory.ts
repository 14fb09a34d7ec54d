/**
 * Memory benchmark (issue 17): the operator's and the data plane's resident memory (VmRSS) and
 * V8 heap used, idle after settling, with 10, 1,000 and 5,000 Releases in the cluster (each the
 * size of the example app's: `config/schema/*.yaml` and `config/permissions.yaml`, ≈ 8.5 KiB of
 * JSON), the growth per extra Release, and the time from `kubectl create` of 1,000 Releases until
 * the operator has reconciled them all (each Release's status carries the operator's
 * observedGeneration and a Ready condition).
 *
 *   npm run build && nice -n 10 node_modules/.bin/node bench/memory.ts [--counts 10,1000,5000] [--dist <dir>] [--settle <s>] [--node-options "<flags>"]
 *
 * `--dist` runs another build's `operator/main.js` (e.g. a copy of main's `dist/`, for the
 * before figures); the bench's own helpers always come from this checkout's `dist/`. It starts
 * (or reuses) the local control plane in SANTOKIT_STATE_DIR (default `.santokit/bench-memory`),
 * creates the Project `bench` with one Environment `prod` serving the first release (its
 * `status.currentRelease` set directly: no database is needed to hold releases), and for each
 * count creates the Releases missing, waits until they are reconciled, then starts the operator
 * and the data plane afresh (as the demo runs them), waits until both are ready and the operator
 * has reconciled everything, lets them settle and reads /proc and /metrics. Figures are printed,
 * never asserted; `cluster.sh down` with the same SANTOKIT_STATE_DIR removes it all.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const counts = flag('counts', '10,1000,5000')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const dist = path.resolve(flag('dist', path.join(root, 'dist')));
const settleSeconds = Number(flag('settle', '30'));
// NODE_OPTIONS of the operator and the data plane, e.g. the chart's heap caps: `--node-options "--max-old-space-size=128"`.
const nodeOptions = flag('node-options', '');
const PROJECT = 'bench';
const NAMESPACE = `stk-${PROJECT}`;

const stateDir = path.resolve(root, process.env.SANTOKIT_STATE_DIR ?? '.santokit/bench-memory');
const up = execFileSync('bash', [path.join(root, 'hack/cluster.sh'), 'up'], { cwd: root, env: { ...process.env, SANTOKIT_STATE_DIR: stateDir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
for (const line of up.split('\n')) {
  const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
  if (m?.[1] && m[2] !== undefined) process.env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
}
const kubeconfig = process.env.KUBECONFIG!;
const kubectl = process.env.SANTOKIT_KUBECTL!;

type Any = Record<string, any>;
const { KubeClient } = (await import(path.join(root, 'dist/core/kube/client.js'))) as Any;
const { Kinds } = (await import(path.join(root, 'dist/core/api/resources.js'))) as Any;
const { buildRelease } = (await import(path.join(root, 'dist/core/release/build.js'))) as Any;
const { releaseManifest, projectManifest, environmentManifest } = (await import(path.join(root, 'dist/cli/manifests.js'))) as Any;
const client = await KubeClient.load({ kubeconfig });

const schemaFiles = fs
  .readdirSync(path.join(root, 'config/schema'))
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({ path: `schema/${f}`, text: fs.readFileSync(path.join(root, 'config/schema', f), 'utf8') }));
const permissions = { path: 'config/permissions.yaml', text: fs.readFileSync(path.join(root, 'config/permissions.yaml'), 'utf8') };

/** Release i of the example app: the same content at a different commit (so a different id). */
function release(i: number): Any {
  const commit = i.toString(16).padStart(40, '0');
  return releaseManifest(buildRelease({ commit, schemaFiles, permissions }, { project: PROJECT }), NAMESPACE);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  probeUrl: string;
  log: string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
// Never leave an operator or a data plane behind, however the bench ends.
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

/** Starts `operator/main.js` of the build under test, as hack/demo.sh does; logs go to the state directory. */
async function start(name: string, extra: string[]): Promise<Proc> {
  const probePort = await freePort();
  const log = path.join(stateDir, `bench-${name}.log`);
  const out = fs.openSync(log, 'w');
  const child = spawn(process.execPath, [path.join(dist, 'operator/main.js'), ...extra, '--bind-address', '127.0.0.1', '--health-port', String(probePort), '--log-level', 'info'], {
    cwd: root,
    env: { ...process.env, KUBECONFIG: kubeconfig, NODE_OPTIONS: nodeOptions },
    stdio: ['ignore', out, out],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve(void children.delete(child))));
  return {
    child,
    probeUrl: `http://127.0.0.1:${probePort}`,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function ready(p: Proc, timeoutMs = 300_000): Promise<void> {
  await until(`${p.probeUrl}/readyz`, timeoutMs, async () => {
    if (p.child.exitCode !== null) throw new Error('exited');
    return (await fetch(`${p.probeUrl}/readyz`)).status === 200 ? true : undefined;
  });
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
function rss(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function heapUsed(p: Proc): Promise<number> {
  const page = await (await fetch(`${p.probeUrl}/metrics`)).text();
  const line = page.split('\n').find((l) => l.startsWith('nodejs_heap_size_used_bytes '));
  return Number(line?.split(' ')[1] ?? NaN) / 1024 / 1024;
}

/** Sum of the operator's informer relists so far (each one lists a whole kind again). */
async function relists(p: Proc): Promise<number> {
  const page = await (await fetch(`${p.probeUrl}/metrics`)).text();
  return page
    .split('\n')
    .filter((l) => l.startsWith('santokit_informer_relists_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** How many Releases of the bench namespace the operator has reconciled (status.observedGeneration and Ready). */
async function reconciledCount(): Promise<{ reconciled: number; total: number }> {
  let reconciled = 0;
  let total = 0;
  let cont: string | undefined;
  do {
    const page: Any = await client.request('GET', KubeClient.path(Kinds.Release, NAMESPACE), { query: { limit: '500', ...(cont ? { continue: cont } : {}) } });
    for (const r of page.items ?? []) {
      total++;
      if (r.status?.observedGeneration === r.metadata.generation && (r.status?.conditions ?? []).some((c: Any) => c.type === 'Ready')) reconciled++;
    }
    cont = page.metadata.continue || undefined;
  } while (cont);
  return { reconciled, total };
}

async function existingReleases(): Promise<number> {
  return (await client.listMetadata(Kinds.Release, { namespace: NAMESPACE })).items.length;
}

/** `kubectl create -f` of releases [from, to) as multi-document files of at most 500. */
function createReleases(from: number, to: number): void {
  for (let start = from; start < to; start += 500) {
    const docs: string[] = [];
    for (let i = start; i < Math.min(to, start + 500); i++) docs.push(JSON.stringify(release(i)));
    const file = path.join(stateDir, 'bench-releases.yaml');
    fs.writeFileSync(file, docs.join('\n---\n'));
    execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'create', '-f', file, '-o', 'name'], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
  }
}

// The project and its environment, once.
const first = release(0);
if (!(await client.find(Kinds.Project, PROJECT))) await client.create(Kinds.Project, projectManifest(PROJECT));
const bootstrap = await start('operator-setup', []);
await until(`namespace ${NAMESPACE}`, 120_000, async () => ((await client.find(Kinds.Namespace, NAMESPACE)) ? true : undefined));
if (!(await client.find(Kinds.Environment, 'prod', NAMESPACE))) await client.create(Kinds.Environment, environmentManifest('prod', NAMESPACE, { project: PROJECT, release: first.metadata.name }));
if ((await existingReleases()) === 0) createReleases(0, 1);
await client.patch(Kinds.Environment, 'prod', NAMESPACE, { status: { currentRelease: first.metadata.name } }, { subresource: 'status' });

console.log(`# bench/memory: ${dist === path.join(root, 'dist') ? 'this checkout' : dist}, ${os.cpus().length} CPUs, settle ${settleSeconds}s, NODE_OPTIONS "${nodeOptions}", release ≈ ${(JSON.stringify(first).length / 1024).toFixed(1)} KiB of JSON`);
const rows: Array<{ n: number; op: { rss: number; peak: number; heap: number; relists: number }; dp: { rss: number; peak: number; heap: number } }> = [];
let operator = bootstrap;
for (const n of counts) {
  const have = await existingReleases();
  if (have < n) {
    const t0 = Date.now();
    createReleases(have, n);
    const created = Date.now() - t0;
    const done = await until(`${n} Releases reconciled`, 30 * 60_000, async () => {
      const c = await reconciledCount();
      return c.reconciled >= n ? Date.now() : undefined;
    }, 2000);
    console.log(`kubectl create of ${n - have} Releases (to ${n}): ${(created / 1000).toFixed(1)} s; all ${n} reconciled by the operator ${((done - t0) / 1000).toFixed(1)} s after the create began`);
  }
  // Fresh processes: what a restart with n Releases in the cluster costs once settled.
  await operator.stop();
  operator = await start(`operator-${n}`, []);
  const dataPlane = await start(`data-plane-${n}`, ['bridge', '--port', String(await freePort())]);
  const t0 = Date.now();
  await ready(operator);
  // The data plane serves prod's release (it is not /readyz-ready: prod has no Connections).
  await until('the data plane to serve prod', 300_000, async () => (fs.readFileSync(dataPlane.log, 'utf8').includes('"msg":"serving release"') ? true : undefined));
  await until('every Release reconciled', 30 * 60_000, async () => ((await reconciledCount()).reconciled >= n ? true : undefined), 2000);
  const readyIn = Date.now() - t0;
  await sleep(settleSeconds * 1000);
  const op = { ...rss(operator.child.pid!), heap: await heapUsed(operator), relists: await relists(operator) };
  const dp = { ...rss(dataPlane.child.pid!), heap: await heapUsed(dataPlane) };
  rows.push({ n, op, dp });
  console.log(
    `${String(n).padStart(5)} Releases: operator RSS ${op.rss.toFixed(0)} MiB (peak ${op.peak.toFixed(0)}), heap used ${op.heap.toFixed(1)} MiB, ${op.relists} informer lists | data plane RSS ${dp.rss.toFixed(0)} MiB (peak ${dp.peak.toFixed(0)}), heap used ${dp.heap.toFixed(1)} MiB | ready and reconciled ${(readyIn / 1000).toFixed(1)} s after start`,
  );
  await dataPlane.stop();
}
await operator.stop();

for (let i = 1; i < rows.length; i++) {
  const a = rows[i - 1]!;
  const b = rows[i]!;
  const per = (x: number, y: number) => (((y - x) * 1024 * 1024) / (b.n - a.n) / 1024).toFixed(2);
  console.log(
    `growth ${a.n} → ${b.n}: operator ${per(a.op.rss, b.op.rss)} KiB RSS / ${per(a.op.heap, b.op.heap)} KiB heap per Release; data plane ${per(a.dp.rss, b.dp.rss)} KiB RSS / ${per(a.dp.heap, b.dp.heap)} KiB heap per Release`,
  );
}
