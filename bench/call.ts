/**
 * Data-plane benchmark: `POST /call` select by primary key under a permission condition
 * (`resource.owner_id == request.auth.sub`), 32 concurrent keep-alive connections for 20 s,
 * beside a bare Node server doing the same HTTP + JSON + prepared select with the same driver and
 * pool size (the target: bridge ≥ 0.85 × its req/s, p99 ≤ 2 × its p99, ≤ 150 µs CPU per call),
 * and pgbench running the equivalent SQL on the same database with 32 clients (the floor).
 *
 *   npm run build && SANTOKIT_STATE_DIR=.santokit/bench-cluster npx node bench/call.ts [seconds] [connections]
 *
 * The bridge and the bare server take turns in 2 s slices (figures summed over the slices, and
 * the spread of the per-round ratios printed), so load from elsewhere on a shared machine weighs
 * on both alike. BRIDGE_NODE_OPTIONS / BARE_NODE_OPTIONS profile either server alone, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof".
 *
 * Starts (or reuses) the local control plane in SANTOKIT_STATE_DIR, runs the operator and the
 * bridge as processes, sets a project up with stk (apply, API key) and seeds 10 000 rows. Figures
 * are printed, never asserted. Everything shares the machine: read the ratio, not the absolutes.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const root = path.resolve(import.meta.dirname, '..');
const seconds = Number(process.argv[2] ?? 20);
const connections = Number(process.argv[3] ?? 32);
const ROWS = 10_000;
const PGBENCH = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';

// The control plane first: the test helpers read its coordinates from the environment.
const stateDir = path.resolve(root, process.env.SANTOKIT_STATE_DIR ?? '.santokit/bench-cluster');
const up = execFileSync('bash', [path.join(root, 'hack/cluster.sh'), 'up'], { cwd: root, env: { ...process.env, SANTOKIT_STATE_DIR: stateDir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
for (const line of up.split('\n')) {
  const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
  if (m?.[1] && m[2] !== undefined) process.env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
}

const { adminKubeconfig, eventually, freePort, kubectl, startOperator, stk, uniqueName, waitForOperatorReady } = await import('../tests/support/cluster.ts');
const { createTestRepo } = await import('../tests/support/git-repo.ts');
const { createTestDatabase } = await import('../tests/support/postgres.ts');

function must(res: { code: number; stdout: string; stderr: string }, what: string): string {
  if (res.code !== 0) throw new Error(`${what} failed (${res.code}): ${res.stderr}${res.stdout}`);
  return res.stdout;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function processCpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const operator = await startOperator({ leaseName: uniqueName('lease-bench') });
const bridgePort = await freePort();
const probePort = await freePort();
// The per-key rate stays on (its cost is part of a call) but far above what one machine sends.
const bridge = spawn(process.execPath, [path.join(root, 'dist/operator/main.js'), 'bridge', '--port', String(bridgePort), '--health-port', String(probePort), '--bind-address', '127.0.0.1', '--log-level', process.env.BRIDGE_LOG_LEVEL ?? 'info', '--key-rate', '1000000', '--key-burst', '1000000'], {
  // BRIDGE_NODE_OPTIONS profiles the bridge alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  env: { ...process.env, KUBECONFIG: adminKubeconfig(), ...(process.env.BRIDGE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BRIDGE_NODE_OPTIONS } : {}) },
  // BRIDGE_LOG_FILE keeps the bridge's log, e.g. to see what it logs under load
  stdio: process.env.BRIDGE_LOG_FILE ? ['ignore', 'ignore', fs.openSync(process.env.BRIDGE_LOG_FILE, 'w')] : ['ignore', 'ignore', 'ignore'],
});
const bridgeExited = new Promise((resolve) => bridge.on('exit', resolve));
const db = await createTestDatabase('bench_call');
const cleanups: Array<() => Promise<unknown>> = [async () => (bridge.kill('SIGTERM'), bridgeExited), () => operator.stop(), () => db.drop()];

try {
  await waitForOperatorReady(operator);
  const project = uniqueName('bench');
  must(await stk(['project', 'create', project]), 'project create');
  // Deleted again (while the operator still runs): a reused cluster does not pile up projects,
  // whose informers would add to the bridge's background CPU in later runs.
  cleanups.unshift(() => kubectl(['delete', 'projects.santokit.io', project, '--wait=true', '--timeout=60s']));
  must(await stk(['env', 'create', '--project', project, 'dev']), 'env create');
  must(await stk(['connections', 'set', '--project', project, '--env', 'dev', '--name', 'main', '--db-url', db.url]), 'connections set');
  const repo = await createTestRepo('stk-bench');
  const ref = await repo.commit({
    'schema/app.yaml': 'version: 1\ntables:\n  items:\n    id: { generate: ulid }\n    columns:\n      owner_id: { type: string, nullable: false }\n      name: { type: string }\n      n: { type: int }\n    indexes:\n      - { columns: [owner_id] }\n',
    'config/permissions.yaml': "tables:\n  items:\n    select:\n      - roles: [reader]\n        columns: [id, name, n]\n        condition: 'resource.owner_id == request.auth.sub'\n",
  });
  must(await stk(['apply', '--project', project, '--env', 'dev', '--ref', ref, '--repo', repo.dir]), 'apply');
  const key = JSON.parse(must(await stk(['apikey', 'create', '--project', project, '--env', 'dev', '--name', 'bench', '--roles', 'reader', '--json']), 'apikey create')) as { keyId: string; apiKey: string };

  // Half the rows belong to the key; the benchmark reads those by id.
  await db.sql`INSERT INTO items (id, owner_id, name, n) SELECT 'item-' || lpad(i::text, 6, '0'), CASE WHEN i % 2 = 0 THEN ${key.keyId} ELSE 'someone-else' END, 'name ' || i, i FROM generate_series(1, ${ROWS}) AS i`;
  await db.sql`ANALYZE items`;
  const ids = Array.from({ length: ROWS / 2 }, (_, i) => `item-${String((i + 1) * 2).padStart(6, '0')}`);

  await eventually(
    async () => {
      const res = await fetch(`http://127.0.0.1:${probePort}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    { timeoutMs: 60_000, what: 'the bridge to be ready' },
  );

  // The bare server: node:http, JSON in and out, the same prepared select through the same driver
  // with the bridge's pool size; no authentication, no permission model, no limits.
  const barePort = await freePort();
  const bareCode = `
    import http from 'node:http';
    import postgres from 'postgres';
    const sql = postgres(process.env.BARE_DB_URL, { max: 10, prepare: true, onnotice: () => {} });
    const owner = process.env.BARE_OWNER;
    process.on('SIGTERM', () => process.exit(0)); // a normal exit: --cpu-prof writes its profile
    http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const rows = await sql.unsafe('SELECT "id", "name", "n" FROM "public"."items" WHERE "id" = $1 AND "owner_id" = $2 LIMIT $3 OFFSET $4', [body.params.where.id, owner, 1000, 0], { prepare: true });
          const text = JSON.stringify({ data: rows });
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
        } catch {
          res.writeHead(500).end();
        }
      });
    }).listen(Number(process.env.BARE_PORT), '127.0.0.1', () => console.log('listening'));
  `;
  const bare = spawn(process.execPath, ['--input-type=module', '-e', bareCode], { cwd: root, env: { ...process.env, BARE_DB_URL: db.url, BARE_OWNER: key.keyId, BARE_PORT: String(barePort), ...(process.env.BARE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BARE_NODE_OPTIONS } : {}) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const bareExited = new Promise((resolve) => bare.on('exit', resolve));
  cleanups.unshift(async () => (bare.kill('SIGTERM'), bareExited));
  await new Promise<void>((resolve, reject) => {
    bare.stdout!.once('data', () => resolve());
    bare.once('exit', (code) => reject(new Error(`the bare server exited with ${code}`)));
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const post = (id: string, port = bridgePort): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ path: 'db/items/select', params: { where: { id } } });
      const req = http.request(
        { host: '127.0.0.1', port, path: '/call', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-santokit-api-key': key.apiKey } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  // Correctness first: own rows found, others' rows invisible.
  const probe = await fetch(`http://127.0.0.1:${bridgePort}/call`, { method: 'POST', headers: { 'x-santokit-api-key': key.apiKey }, body: JSON.stringify({ path: 'db/items/select', params: { where: { id: 'item-000001' } } }) });
  if (JSON.stringify(await probe.json()) !== '{"data":[]}') throw new Error('the condition did not hide another owner\'s row');

  async function load(durationMs: number, concurrency = connections, port = bridgePort): Promise<{ latencies: Float64Array; count: number; errors: number; elapsed: number }> {
    const latencies: number[] = [];
    let errors = 0;
    const start = performance.now();
    const deadline = start + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const t = performance.now();
          const status = await post(ids[Math.floor(Math.random() * ids.length)]!, port);
          latencies.push(performance.now() - t);
          if (status !== 200) errors++;
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    return { latencies: Float64Array.from(latencies).sort(), count: latencies.length, errors, elapsed };
  }

  // Warm-up of both (pools, prepared statements, JIT), then one connection against the bridge.
  await load(2_000);
  await load(2_000, connections, barePort);
  const single = await load(3_000, 1);

  // The bridge and the bare server take turns in slices of up to 2 s (bridge first in even
  // rounds, bare first in odd ones), so that load from elsewhere on the machine weighs on both
  // alike; the figures sum the slices. CPU is each server process's own (user + system) over its
  // slices, divided by the calls it answered.
  interface Run { latencies: number[]; count: number; errors: number; elapsed: number; cpu: number }
  const empty = (): Run => ({ latencies: [], count: 0, errors: 0, elapsed: 0, cpu: 0 });
  const runs = { bridge: empty(), bare: empty() };
  const rounds: Array<{ bridge: number; bare: number; bridgeCpu: number; bareCpu: number }> = [];
  const sliceMs = Math.min(2_000, seconds * 1000);
  const roundCount = Math.max(1, Math.round((seconds * 1000) / sliceMs));
  let clientCpu = 0;
  for (let i = 0; i < roundCount; i++) {
    const round = { bridge: 0, bare: 0, bridgeCpu: 0, bareCpu: 0 };
    for (const which of i % 2 === 0 ? (['bridge', 'bare'] as const) : (['bare', 'bridge'] as const)) {
      const proc = which === 'bridge' ? bridge : bare;
      const cpuBefore = processCpuSeconds(proc.pid!);
      const clientBefore = process.cpuUsage();
      const slice = await load(sliceMs, connections, which === 'bridge' ? bridgePort : barePort);
      const cpu = processCpuSeconds(proc.pid!) - cpuBefore;
      if (which === 'bridge') clientCpu += cpuSeconds(process.cpuUsage(clientBefore));
      const run = runs[which];
      for (const l of slice.latencies) run.latencies.push(l);
      run.count += slice.count;
      run.errors += slice.errors;
      run.elapsed += slice.elapsed;
      run.cpu += cpu;
      round[which] = slice.count / slice.elapsed;
      round[which === 'bridge' ? 'bridgeCpu' : 'bareCpu'] = (cpu / slice.count) * 1e6;
    }
    rounds.push(round);
  }
  const sorted = (run: Run) => ({ ...run, latencies: Float64Array.from(run.latencies).sort() });
  const r = sorted(runs.bridge);
  const b = sorted(runs.bare);
  const cpu = { bridge: runs.bridge.cpu, client: clientCpu };
  const bareCpu = runs.bare.cpu;
  agent.destroy();

  // pgbench: the same statement the bridge sends (select list, pk + condition, limit/offset), prepared.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stk-pgbench-'));
  const script = path.join(dir, 'select.sql');
  fs.writeFileSync(
    script,
    `\\set i random(1, ${ROWS / 2})\nSELECT "id", "name", "n" FROM "public"."items" WHERE "id" = 'item-' || lpad((:i * 2)::text, 6, '0') AND "owner_id" = '${key.keyId}' LIMIT 1000 OFFSET 0;\n`,
  );
  const pg = execFileSync(PGBENCH, ['-n', '-M', 'prepared', '-c', String(connections), '-j', '2', '-T', String(seconds), '-f', script, '-l', '--log-prefix', path.join(dir, 'log'), db.url], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const pgLatencies = Float64Array.from(
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('log'))
      .flatMap((f) =>
        fs
          .readFileSync(path.join(dir, f), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => Number(l.split(' ')[2]) / 1000),
      ),
  ).sort();
  const pgTps = Number(/tps = ([\d.]+)/.exec(pg)?.[1] ?? NaN);
  fs.rmSync(dir, { recursive: true, force: true });

  const fmt = (n: number) => n.toFixed(2).padStart(8);
  console.log(`\nselect by primary key with a condition: ${connections} connections, ${seconds} s, ${os.cpus().length} CPUs (shared by client, bridge and Postgres)\n`);
  console.log('                       req/s    p50 ms   p99 ms   errors');
  console.log(`POST /call (bridge) ${String(Math.round(r.count / r.elapsed)).padStart(8)} ${fmt(percentile(r.latencies, 0.5))} ${fmt(percentile(r.latencies, 0.99))} ${String(r.errors).padStart(8)}`);
  console.log(`bare Node server    ${String(Math.round(b.count / b.elapsed)).padStart(8)} ${fmt(percentile(b.latencies, 0.5))} ${fmt(percentile(b.latencies, 0.99))} ${String(b.errors).padStart(8)}`);
  console.log(`pgbench (floor)     ${String(Math.round(pgTps)).padStart(8)} ${fmt(percentile(pgLatencies, 0.5))} ${fmt(percentile(pgLatencies, 0.99))}        -`);
  console.log(`POST /call, 1 conn  ${String(Math.round(single.count / single.elapsed)).padStart(8)} ${fmt(percentile(single.latencies, 0.5))} ${fmt(percentile(single.latencies, 0.99))} ${String(single.errors).padStart(8)}`);
  const ratio = r.count / r.elapsed / (b.count / b.elapsed);
  const p99Ratio = percentile(r.latencies, 0.99) / percentile(b.latencies, 0.99);
  const cpuPerCall = (cpu.bridge / r.count) * 1e6;
  console.log(`\nbridge / bare Node throughput: ${ratio.toFixed(2)} × (target ≥ 0.85)`);
  console.log(`bridge p99 / bare Node p99:    ${p99Ratio.toFixed(2)} × (target ≤ 2)`);
  console.log(`bridge CPU per call:           ${cpuPerCall.toFixed(0)} µs (target ≤ 150); bare Node ${((bareCpu / b.count) * 1e6).toFixed(0)} µs`);
  console.log(`bridge / pgbench throughput:   ${((r.count / r.elapsed / pgTps) * 100).toFixed(1)} %`);
  const spread = (xs: number[], digits = 2) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  console.log(`per ${sliceMs / 1000} s round (${rounds.length}): bridge/bare throughput ${spread(rounds.map((x) => x.bridge / x.bare))}, bridge CPU/call ${spread(rounds.map((x) => x.bridgeCpu), 0)} µs, bare ${spread(rounds.map((x) => x.bareCpu), 0)} µs`);
  console.log(`CPU during the /call run: bridge ${(cpu.bridge / r.elapsed * 100).toFixed(0)} % of a core (${((cpu.bridge / r.count) * 1e6).toFixed(0)} µs per call), load client ${(cpu.client / r.elapsed * 100).toFixed(0)} %; load average ${os.loadavg()[0]!.toFixed(1)}`);
} finally {
  for (const c of cleanups) await c().catch(() => {});
}
