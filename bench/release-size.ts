/**
 * Release creation at scale (issue 17): schemas of 1,000 and 10,000 tables (20 columns each, varied
 * names and types, indexes, foreign keys; tests/support/large-schema.ts, deterministic) go through
 * `stk apply --dry-run` and a real `stk apply` (the built stk as a subprocess) against the local
 * control plane, the operator and Postgres. Prints what is stored (the Release object, its chunk
 * ConfigMaps), what main's inline format would have needed, the time of each step and whether it
 * succeeded, and the peak memory of stk and the operator. Then the data plane (the built bridge) is
 * started against the released environment: time from its start to the first served `POST /call`
 * (a select on one of the tables, then an insert), its peak (VmHWM) and settled RSS and its
 * `santokit_release_cache_bytes`, so the chart's memory limits can be set from what a large release
 * needs. Figures are printed, never asserted.
 *
 *   npm run build && nice -n 10 node_modules/.bin/node --experimental-transform-types bench/release-size.ts [--tables 1000,10000] [--mode transactional|online] [--operator-heap <MiB>] [--bridge-heap <MiB>]
 *
 * SANTOKIT_STATE_DIR picks the control plane (default .santokit/bench-cluster; started if down).
 * `--tables 200` is a quick check.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { tables: { type: 'string', default: '1000,10000' }, mode: { type: 'string' }, 'operator-heap': { type: 'string' }, 'bridge-heap': { type: 'string' } } });
const sizes = String(values.tables)
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
const mode = values.mode;

const stateDir = path.resolve(root, process.env.SANTOKIT_STATE_DIR ?? '.santokit/bench-cluster');
const up = execFileSync('bash', [path.join(root, 'hack/cluster.sh'), 'up'], { cwd: root, env: { ...process.env, SANTOKIT_STATE_DIR: stateDir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
for (const line of up.split('\n')) {
  const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
  if (m?.[1] && m[2] !== undefined) process.env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
}

const { adminClient, adminKubeconfig, freePort, runCommand, startOperator, uniqueName, waitForOperatorReady } = await import('../tests/support/cluster.ts');
const { createTestRepo } = await import('../tests/support/git-repo.ts');
const { createTestDatabase } = await import('../tests/support/postgres.ts');
const { largeSchema } = await import('../tests/support/large-schema.ts');
const { buildRelease } = await import('../core/release/build.ts');
const { releaseManifest } = await import('../cli/manifests.ts');
const { Kinds } = await import('../core/api/resources.ts');

const client = await adminClient();
// --operator-heap <MiB>: the operator's V8 old-space limit, to see whether a release fits a container's memory limit.
const heap = values['operator-heap'];
const operator = await startOperator({ leaseName: uniqueName('lease-bench-size'), ...(heap ? { env: { NODE_OPTIONS: `--max-old-space-size=${Number(heap)}` } } : {}) });
if (heap) console.log(`operator heap limit: ${heap} MiB (--max-old-space-size)`);
await waitForOperatorReady(operator);

const kib = (bytes: number): string => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Peak resident memory of a live process (VmHWM), MiB. */
function peakMiB(pid: number): number {
  return statusMiB(pid, 'VmHWM');
}

/** A memory line of /proc/<pid>/status (VmHWM: peak resident, VmRSS: resident now), MiB; NaN once the process is gone. */
function statusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return NaN;
  }
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(text);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The built stk under /usr/bin/time: exit code, output, wall time and peak RSS. */
async function stk(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number; peakMiB: number }> {
  const start = performance.now();
  const env = { ...process.env, KUBECONFIG: adminKubeconfig(), NO_COLOR: '1' };
  const res = await runCommand('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, path.join(root, 'dist/cli/main.js'), ...args], { env, timeoutMs: 3 * 3600_000 });
  const ms = performance.now() - start;
  const rss = /maxrss=(\d+)\s*$/.exec(res.stderr);
  return { code: res.code, stdout: res.stdout, stderr: res.stderr.replace(/maxrss=\d+\s*$/, ''), ms, peakMiB: rss ? Number(rss[1]) / 1024 : NaN };
}

function outcome(res: { code: number; stdout: string; stderr: string }): string {
  if (res.code === 0) return 'ok';
  const why = `${res.stderr}\n${res.stdout}`.split('\n').filter((l) => l.trim()).slice(-3).join(' | ');
  return `FAILED (exit ${res.code}): ${why.slice(0, 400)}`;
}

// --bridge-heap <MiB>: the data plane's V8 old-space limit, as a container's memory limit would pair with it.
const bridgeHeap = values['bridge-heap'];

/** A value for a column of the large schema's type (tests/support/large-schema.ts), for an insert. */
function sampleValue(type: string): unknown {
  if (type === 'string') return 'bench';
  if (type === 'int' || type === 'bigint') return 1;
  if (type === 'boolean') return true;
  return undefined;
}

/**
 * One table of the schema with a policy (select for reader/admin, insert for admin) whose required
 * column takes a plain value, taken from the middle of the schema, and the insert's data.
 */
function pickTable(files: Record<string, string>, tables: string[]): { table: string; data: Record<string, unknown> } {
  const text = Object.values(files).join('\n');
  for (let i = Math.floor(tables.length / 2) & ~1; i < tables.length; i += 2) {
    const table = tables[i]!;
    const block = text.slice(text.indexOf(`\n  ${table}:\n`));
    const m = /\n {6}([a-z0-9_]+): \{ type: ([a-z]+), nullable: false/.exec(block);
    const value = m ? sampleValue(m[2]!) : undefined;
    if (m && value !== undefined) return { table, data: { [m[1]!]: value } };
  }
  throw new Error('no table of the schema takes a plain value in its required column');
}

interface Call {
  status: number;
  body: string;
}

async function postCall(url: string, apiKey: string, callPath: string, params: unknown): Promise<Call> {
  const res = await fetch(`${url}/call`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-santokit-api-key': apiKey }, body: JSON.stringify({ path: callPath, params }) });
  return { status: res.status, body: await res.text() };
}

/** A gauge's value from a Prometheus text exposition. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/**
 * The data plane against the released environment: the built bridge (`santokit-operator bridge`,
 * as the data-plane tests start it), an API key made before it starts, then `POST /call` until the
 * environment is served; one select and one insert; its memory and release-cache figures.
 */
async function benchDataPlane(project: string, schema: { files: Record<string, string>; tables: string[] }): Promise<void> {
  const keyRes = await runCommand(process.execPath, [path.join(root, 'dist/cli/main.js'), 'apikey', 'create', '--project', project, '--env', 'dev', '--name', uniqueName('bench'), '--roles', 'admin', '--json'], { env: { ...process.env, KUBECONFIG: adminKubeconfig(), NO_COLOR: '1' } });
  if (keyRes.code !== 0) throw new Error(`stk apikey create: ${keyRes.stderr}`);
  const { apiKey } = JSON.parse(keyRes.stdout) as { apiKey: string };
  const { table, data } = pickTable(schema.files, schema.tables);

  const port = await freePort();
  const probePort = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(root, 'dist/operator/main.js'), 'bridge', '--port', String(port), '--health-port', String(probePort), '--bind-address', '127.0.0.1', '--log-level', 'info'], {
    env: { ...process.env, KUBECONFIG: adminKubeconfig(), ...(bridgeHeap ? { NODE_OPTIONS: `--max-old-space-size=${Number(bridgeHeap)}` } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-200_000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-200_000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const url = `http://127.0.0.1:${port}`;
  const probe = `http://127.0.0.1:${probePort}`;
  let hwm = NaN;
  const sample = () => {
    const v = peakMiB(child.pid!);
    if (!Number.isNaN(v)) hwm = v;
  };
  const dead = () => {
    const why = output.split('\n').filter((l) => /heap|memory|FATAL|error/i.test(l)).slice(-3).join(' | ');
    console.log(`data plane EXITED (${child.exitCode ?? child.signalCode}) after ${secs(performance.now() - started)}; last peak RSS ${hwm.toFixed(0)} MiB: ${why.slice(0, 600)}`);
  };
  try {
    console.log(`data plane heap limit: ${bridgeHeap ? `${bridgeHeap} MiB (--max-old-space-size)` : "Node's default"}; calls db/${table}/select and /insert`);
    // Served once a select answers 200: the release is loaded and the operator's credential has reached it.
    let readyMs: number | undefined;
    let last: Call | undefined;
    const deadline = performance.now() + 15 * 60_000;
    while (!gone() && performance.now() < deadline) {
      sample();
      if (readyMs === undefined) {
        const r = await fetch(`${probe}/readyz`).catch(() => undefined);
        if (r?.status === 200) readyMs = performance.now() - started;
      }
      last = await postCall(url, apiKey, `db/${table}/select`, { limit: 1 }).catch(() => undefined);
      if (last?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    sample();
    if (gone()) return dead();
    const servedMs = performance.now() - started;
    if (last?.status !== 200) {
      console.log(`data plane: NOT served after ${secs(servedMs)} (last answer ${last?.status ?? 'none'}: ${(last?.body ?? '').slice(0, 300)}); peak RSS ${hwm.toFixed(0)} MiB`);
      return;
    }
    // /readyz may turn 200 a moment after the first call is served (every served environment loaded).
    const readyDeadline = performance.now() + 60_000;
    while (readyMs === undefined && !gone() && performance.now() < readyDeadline) {
      const r = await fetch(`${probe}/readyz`).catch(() => undefined);
      if (r?.status === 200) readyMs = performance.now() - started;
      else await new Promise((res) => setTimeout(res, 200));
    }
    console.log(`data plane: first served call ${secs(servedMs)} after start (/readyz 200 at ${readyMs === undefined ? 'not within 60 s more' : secs(readyMs)}); select ok`);
    const insert = await postCall(url, apiKey, `db/${table}/insert`, { data });
    const selectAgain = await postCall(url, apiKey, `db/${table}/select`, { limit: 5 });
    const rows = selectAgain.status === 200 ? ((JSON.parse(selectAgain.body) as { data?: unknown[] }).data?.length ?? 0) : 0;
    console.log(`insert: ${insert.status === 200 ? 'ok' : `FAILED (${insert.status}): ${insert.body.slice(0, 300)}`}; select after it: ${selectAgain.status}, ${rows} row(s)`);
    sample();
    // Settled: the first calls answered, nothing more to load; RSS after a quiet spell.
    const quietUntil = performance.now() + 20_000;
    while (!gone() && performance.now() < quietUntil) {
      sample();
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (gone()) return dead();
    const settled = statusMiB(child.pid!, 'VmRSS');
    sample();
    const metrics = await (await fetch(`${probe}/metrics`)).text();
    const cache = metric(metrics, 'santokit_release_cache_bytes');
    const heapUsed = metric(metrics, 'nodejs_heap_size_used_bytes');
    console.log(`data plane peak RSS (VmHWM):     ${hwm.toFixed(0)} MiB; settled RSS ${settled.toFixed(0)} MiB (20 s after the calls); heap used ${(heapUsed / 1024 / 1024).toFixed(0)} MiB`);
    console.log(`santokit_release_cache_bytes:    ${cache} (${kib(cache)}), entries ${metric(metrics, 'santokit_release_cache_entries')}`);
  } finally {
    if (!gone()) {
      child.kill('SIGTERM');
      await exited;
    }
  }
}

async function benchSize(tables: number): Promise<void> {
  console.log(`\n== ${tables} tables × 20 columns (indexes on every table, a foreign key on a third), a policy on half ==`);
  const schema = largeSchema(tables);
  const source = await createTestRepo('stk-bench-size');
  const ref = await source.commit({ ...schema.files, 'config/permissions.yaml': schema.permissions }, `${tables} tables`);

  // What stk builds, in this process: main's inline Release against the chunked one.
  const project = uniqueName('size');
  const namespace = `stk-${project}`;
  let t = performance.now();
  const built = buildRelease({ commit: ref, schemaFiles: Object.entries(schema.files).map(([p, text]) => ({ path: p, text })), permissions: { path: 'config/permissions.yaml', text: schema.permissions } }, { project, repo: source.dir });
  const buildMs = performance.now() - t;
  t = performance.now();
  const stored = releaseManifest(built, namespace);
  const encodeMs = performance.now() - t;
  const inline = Buffer.byteLength(JSON.stringify(releaseManifest(built, namespace, undefined, { inlineLimit: Number.POSITIVE_INFINITY }).release));
  const content = stored.release.spec.content;
  console.log(`build (parse, declare, compile): ${secs(buildMs)}; encode: ${secs(encodeMs)}`);
  console.log(`main's inline Release:           ${kib(inline)} (${(inline / tables / 1024).toFixed(2)} KiB/table)${inline > 1.5 * 1024 * 1024 ? ' — over etcd\'s 1.5 MiB request limit' : ''}`);
  if (content) {
    const chunkBytes = content.chunks.reduce((n, c) => n + c.size, 0);
    console.log(`chunked: Release ${kib(Buffer.byteLength(JSON.stringify(stored.release)))} + ${content.chunks.length} chunk(s), ${kib(chunkBytes)} compressed (${(content.summary.jsonBytes / chunkBytes).toFixed(1)}× from ${kib(content.summary.jsonBytes)} of JSON)`);
  } else {
    console.log(`inline (under the threshold): Release ${kib(Buffer.byteLength(JSON.stringify(stored.release)))}`);
  }

  const db = await createTestDatabase(`bench_size_${tables}`);
  try {
    for (const args of [['project', 'create', project], ['env', 'create', '--project', project, 'dev'], ['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', '-']]) {
      const res = await runCommand(process.execPath, [path.join(root, 'dist/cli/main.js'), ...args], { env: { ...process.env, KUBECONFIG: adminKubeconfig(), NO_COLOR: '1' }, input: db.url });
      if (res.code !== 0) throw new Error(`stk ${args.join(' ')}: ${res.stderr}`);
    }
    const apply = ['apply', '--project', project, '--env', 'dev', '--ref', ref, '--repo', source.dir, '--timeout', '1200', ...(mode ? ['--mode', mode] : [])];
    const dry = await stk([...apply, '--dry-run']);
    const planned = /^plan main: (\d+) step/m.exec(dry.stdout)?.[1];
    console.log(`stk apply --dry-run:             ${secs(dry.ms)}, ${outcome(dry)}${planned ? `, ${planned} steps planned` : ''}; stk peak RSS ${dry.peakMiB.toFixed(0)} MiB`);
    const real = await stk(apply);
    console.log(`stk apply:                       ${secs(real.ms)}, ${outcome(real)}; stk peak RSS ${real.peakMiB.toFixed(0)} MiB`);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(real.stdout)?.[1];
    if (id) {
      const raw = await client.request<unknown>('GET', `/apis/santokit.io/v1alpha1/namespaces/${namespace}/releases/${id}`);
      const names = (raw as { spec: { content?: { chunks: Array<{ name: string }> } } }).spec.content?.chunks.map((c) => c.name) ?? [];
      const chunkObjects = await Promise.all(names.map((n) => client.request<unknown>('GET', `/api/v1/namespaces/${namespace}/configmaps/${n}`)));
      const chunkJson = chunkObjects.reduce<number>((n, o) => n + Buffer.byteLength(JSON.stringify(o)), 0);
      console.log(`stored: Release object ${kib(Buffer.byteLength(JSON.stringify(raw)))}; ${names.length} chunk ConfigMap(s), ${kib(chunkJson)} as JSON`);
      const env = await client.get<{ metadata: { name: string }; status?: { currentRelease?: string; steps?: Array<{ name: string; connection?: string; message?: string }> } }>(Kinds.Environment, 'dev', namespace);
      const [row] = (await db.sql`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`) as unknown as Array<{ n: number }>;
      console.log(`served: dev at ${env.status?.currentRelease === id ? id : `${env.status?.currentRelease ?? 'nothing'} (not ${id})`}; ${row?.n ?? 0} tables in the database`);
      for (const s of env.status?.steps ?? []) console.log(`  step ${s.name}${s.connection ? ` ${s.connection}` : ''}: ${s.message ?? ''}`);
    }
    const operatorGone = () => operator.child.exitCode !== null || operator.child.signalCode !== null;
    if (operatorGone()) console.log(`operator EXITED (${operator.child.exitCode ?? operator.child.signalCode}): ${operator.logs().split('\n').filter((l) => /heap|memory|FATAL/i.test(l)).slice(-2).join(' | ')}`);
    else console.log(`operator peak RSS (VmHWM) after apply: ${peakMiB(operator.child.pid!).toFixed(0)} MiB; RSS now ${statusMiB(operator.child.pid!, 'VmRSS').toFixed(0)} MiB`);
    if (id && !operatorGone()) {
      await benchDataPlane(project, schema).catch((err: unknown) => console.log(`data plane: FAILED: ${String(err).slice(0, 400)}`));
      if (!operatorGone()) console.log(`operator peak RSS (VmHWM) after serving: ${peakMiB(operator.child.pid!).toFixed(0)} MiB; RSS now ${statusMiB(operator.child.pid!, 'VmRSS').toFixed(0)} MiB`);
    }
  } finally {
    await client.delete(Kinds.Project, project).catch(() => undefined);
    await db.drop().catch(() => undefined);
  }
}

try {
  for (const size of sizes.length > 0 ? sizes : [1000, 10000]) await benchSize(size);
} finally {
  await operator.stop();
}
