/**
 * Data-plane benchmark: `POST /call` select by primary key under a permission condition
 * (`resource.owner_id == request.auth.sub`), 32 concurrent keep-alive connections for 20 s,
 * beside pgbench running the equivalent SQL on the same database with 32 clients (the floor).
 *
 *   npm run build && SANTOKIT_STATE_DIR=.santokit/bench-cluster npx node bench/call.ts [seconds] [connections]
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

const { adminKubeconfig, eventually, freePort, startOperator, stk, uniqueName, waitForOperatorReady } = await import('../tests/support/cluster.ts');
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
const bridge = spawn(process.execPath, [path.join(root, 'dist/operator/main.js'), 'bridge', '--port', String(bridgePort), '--bind-address', '127.0.0.1', '--log-level', process.env.BRIDGE_LOG_LEVEL ?? 'info'], {
  // BRIDGE_NODE_OPTIONS profiles the bridge alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  env: { ...process.env, KUBECONFIG: adminKubeconfig(), ...(process.env.BRIDGE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BRIDGE_NODE_OPTIONS } : {}) },
  stdio: ['ignore', 'ignore', 'ignore'],
});
const bridgeExited = new Promise((resolve) => bridge.on('exit', resolve));
const db = await createTestDatabase('bench_call');
const cleanups: Array<() => Promise<unknown>> = [async () => (bridge.kill('SIGTERM'), bridgeExited), () => operator.stop(), () => db.drop()];

try {
  await waitForOperatorReady(operator);
  const project = uniqueName('bench');
  must(await stk(['project', 'create', project]), 'project create');
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
      const res = await fetch(`http://127.0.0.1:${bridgePort}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    { timeoutMs: 60_000, what: 'the bridge to be ready' },
  );

  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const post = (id: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ path: 'db/items/select', params: { where: { id } } });
      const req = http.request(
        { host: '127.0.0.1', port: bridgePort, path: '/call', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-santokit-api-key': key.apiKey } },
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

  async function load(durationMs: number, concurrency = connections): Promise<{ latencies: Float64Array; count: number; errors: number; elapsed: number }> {
    const latencies: number[] = [];
    let errors = 0;
    const start = performance.now();
    const deadline = start + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const t = performance.now();
          const status = await post(ids[Math.floor(Math.random() * ids.length)]!);
          latencies.push(performance.now() - t);
          if (status !== 200) errors++;
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    return { latencies: Float64Array.from(latencies).sort(), count: latencies.length, errors, elapsed };
  }

  await load(2_000); // warm-up: pools, prepared statements, JIT
  const single = await load(3_000, 1);
  const cpuBefore = { client: process.cpuUsage(), bridge: processCpuSeconds(bridge.pid!) };
  const r = await load(seconds * 1000);
  const cpu = { client: cpuSeconds(process.cpuUsage(cpuBefore.client)), bridge: processCpuSeconds(bridge.pid!) - cpuBefore.bridge };
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
  console.log(`pgbench (floor)     ${String(Math.round(pgTps)).padStart(8)} ${fmt(percentile(pgLatencies, 0.5))} ${fmt(percentile(pgLatencies, 0.99))}        -`);
  console.log(`POST /call, 1 conn  ${String(Math.round(single.count / single.elapsed)).padStart(8)} ${fmt(percentile(single.latencies, 0.5))} ${fmt(percentile(single.latencies, 0.99))} ${String(single.errors).padStart(8)}`);
  console.log(`\nbridge / pgbench throughput: ${((r.count / r.elapsed / pgTps) * 100).toFixed(1)} %`);
  console.log(`CPU during the /call run: bridge ${(cpu.bridge / r.elapsed * 100).toFixed(0)} % of a core (${((cpu.bridge / r.count) * 1e6).toFixed(0)} µs per call), load client ${(cpu.client / r.elapsed * 100).toFixed(0)} %; load average ${os.loadavg()[0]!.toFixed(1)}`);
} finally {
  for (const c of cleanups) await c().catch(() => {});
}
