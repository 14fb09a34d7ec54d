import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import { adminClient, adminKubeconfig, eventually, freePort, repoRoot, startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { Kinds } from '../../core/api/resources.ts';

/**
 * Helpers for data-plane tests: the real `santokit-operator bridge` process, calls over HTTP with
 * fetch, and a project set up as a user would (stk project/env/connections/apply/apikey).
 */

export interface BridgeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** /healthz, /readyz and /metrics (the probe port, never the public one) */
  readonly probeUrl: string;
  readonly logs: () => string;
  readonly records: () => Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `node dist/operator/main.js bridge` on free ports; resolves once /healthz answers. */
export async function startBridge(options: { args?: string[]; env?: NodeJS.ProcessEnv; logLevel?: string } = {}): Promise<BridgeProcess> {
  const port = await freePort();
  const probePort = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, 'dist/operator/main.js'), 'bridge', '--port', String(port), '--health-port', String(probePort), '--bind-address', '127.0.0.1', '--log-level', options.logLevel ?? 'debug', ...(options.args ?? [])],
    { env: { ...process.env, KUBECONFIG: adminKubeconfig(), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // 'close', not 'exit': 'exit' may come before the last lines written to stdout/stderr were
  // read, and a test that reads the logs after the exit must see all of them.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const bridge: BridgeProcess = {
    child,
    port,
    url,
    probeUrl: `http://127.0.0.1:${probePort}`,
    exited,
    logs: () => output,
    records: () =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      return exited;
    },
  };
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}:\n${output}`);
      const res = await fetch(`http://127.0.0.1:${probePort}/healthz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    { timeoutMs: 60_000, what: 'the bridge to listen' },
  );
  return bridge;
}

/** Resolves once /readyz answers 200 (every served environment loaded). */
export async function waitBridgeReady(bridge: BridgeProcess, timeoutMs = 30_000): Promise<void> {
  let last = '';
  await eventually(
    async () => {
      const res = await fetch(`${bridge.probeUrl}/readyz`);
      last = await res.text();
      return res.status === 200 ? true : undefined;
    },
    { timeoutMs, get what() { return `the bridge to be ready (last answer: ${last})`; } },
  );
}

export interface CallResponse {
  status: number;
  body: { data?: unknown; error?: { code: string; message: string; requestId: string; hint?: string } };
  requestId: string | null;
}

/** `POST /call` with an API key (or none) and optional routing hints. */
export async function call(bridge: BridgeProcess, apiKey: string | undefined, path: string, params: unknown = {}, headers: Record<string, string> = {}): Promise<CallResponse> {
  return callRaw(bridge, JSON.stringify({ path, params }), { ...(apiKey === undefined ? {} : { 'x-santokit-api-key': apiKey }), ...headers });
}

/** `POST /call` with a body as given (for malformed input). */
export async function callRaw(bridge: BridgeProcess, body: string | Uint8Array, headers: Record<string, string> = {}, method = 'POST'): Promise<CallResponse> {
  const res = await fetch(`${bridge.url}/call`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) });
  const text = await res.text();
  let parsed: CallResponse['body'];
  try {
    parsed = JSON.parse(text) as CallResponse['body'];
  } catch {
    throw new Error(`/call answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body: parsed, requestId: res.headers.get('x-request-id') };
}

/** Asserts a successful call and returns its data. */
export function dataOf<T = unknown>(res: CallResponse): T {
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data as T;
}

/** Asserts an error answer in the envelope shape. */
export function expectError(res: CallResponse, status: number, code?: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error).toBeDefined();
  expect(typeof res.body.error?.message).toBe('string');
  expect(res.body.error?.requestId).toBe(res.requestId);
  if (code !== undefined) expect(res.body.error?.code).toBe(code);
}

export interface ApiKey {
  keyId: string;
  apiKey: string;
}

/**
 * `stk apikey create --json`. With a bridge, also waits until the bridge's watch has the key (an
 * empty body is then a 400, not a 401), so a test never races the informer.
 */
export async function createApiKey(project: string, env: string, roles: string[], name = uniqueName('key'), bridge?: BridgeProcess): Promise<ApiKey> {
  const res = await stk(['apikey', 'create', '--project', project, '--env', env, '--name', name, '--roles', roles.join(','), '--json']);
  expectExit(res);
  const out = JSON.parse(res.stdout) as ApiKey;
  if (bridge) {
    await eventually(async () => ((await callRaw(bridge, '{}', { 'x-santokit-api-key': out.apiKey })).status === 400 ? true : undefined), { timeoutMs: 10_000, what: `the bridge to know key ${out.keyId}` });
  }
  return { keyId: out.keyId, apiKey: out.apiKey };
}

/** A project with environments, one database each (connection main) and a Git repository. */
export interface DataplaneProject {
  readonly project: string;
  readonly namespace: string;
  readonly repo: TestRepo;
  readonly dbs: Record<string, TestDatabase>;
  /** commits the files and runs `stk apply` on env; returns the release id */
  apply(env: string, files: Record<string, string | null>, extra?: string[]): Promise<string>;
  /** runs `stk apply` of an existing commit on env; returns the release id */
  applyRef(env: string, ref: string, extra?: string[]): Promise<string>;
  drop(): Promise<void>;
}

/**
 * Waits until `path` answers something other than 503 for `apiKey`: the data plane serves an
 * environment once its release is loaded and the operator's data-plane credential for each
 * connection has reached it (until then a call is 503 ConnectionUnavailable, by design). A 404
 * saying the environment or its release is not known yet (the watch has not brought it) waits too.
 */
export async function waitServable(bridge: BridgeProcess, apiKey: string, path: string, timeoutMs = 60_000): Promise<void> {
  let last = '';
  const notYet = new Set(['EnvironmentNotFound', 'NoCurrentRelease']);
  await eventually(
    async () => {
      const res = await call(bridge, apiKey, path, { limit: 1 });
      last = `${res.status} ${res.body.error?.code ?? ''}`;
      return res.status === 503 || (res.status === 404 && notYet.has(res.body.error?.code ?? '')) ? undefined : true;
    },
    { timeoutMs, get what() { return `the bridge to serve ${path} (last answer: ${last})`; } },
  );
}

/** The repository files of a one-table app (`notes`, with a text `body`) whose table has these rules, e.g. `{ select: ['admin'] }`. */
export function notesApp(rules: Partial<Record<'select' | 'insert' | 'update' | 'delete', string[]>>): Record<string, string> {
  const lines = Object.entries(rules).map(([op, roles]) => `    ${op}: { roles: [${roles!.join(', ')}] }\n`);
  return {
    'schema/app.yaml': 'version: 1\ntables:\n  notes:\n    id: { generate: ulid }\n    columns:\n      body: { type: string }\n',
    'config/permissions.yaml': `tables:\n  notes:\n${lines.join('')}`,
  };
}

/**
 * Waits until the operator has handed the data plane its credential for every connection of `env`
 * (the Connection's DataPlaneCredential condition): until then the data plane answers that
 * environment's calls 503 ConnectionUnavailable, by design.
 */
async function dataPlaneCredentialReady(namespace: string, env: string): Promise<void> {
  const client = await adminClient();
  type Conn = { spec: { environment: string }; status?: { conditions?: Array<{ type: string; status: string }> } };
  await eventually(
    async () => {
      const { items } = await client.list<Conn & { metadata: { name: string } }>(Kinds.Connection, { namespace });
      const ours = items.filter((c) => c.spec.environment === env);
      return ours.length > 0 && ours.every((c) => c.status?.conditions?.some((k) => k.type === 'DataPlaneCredential' && k.status === 'True')) ? true : undefined;
    },
    { timeoutMs: 60_000, what: `the data-plane credential of ${namespace}/${env}` },
  );
}

export async function createDataplaneProject(prefix: string, envs: string[]): Promise<DataplaneProject> {
  const project = uniqueName(prefix);
  expectExit(await stk(['project', 'create', project]));
  const dbs: Record<string, TestDatabase> = {};
  for (const e of envs) {
    expectExit(await stk(['env', 'create', '--project', project, e]));
    dbs[e] = await createTestDatabase(`${prefix}_${e}`);
    const set = await stk(['connections', 'set', '--project', project, '--env', e, '--name', 'main', '--db-url', dbs[e].url]);
    expectExit(set);
  }
  const repo = await createTestRepo(`stk-${prefix}`);
  const applyRef = async (env: string, ref: string, extra: string[] = []): Promise<string> => {
    const res = await stk(['apply', '--project', project, '--env', env, '--ref', ref, '--repo', repo.dir, ...extra]);
    expectExit(res);
    const id = /^releaseId=(rel-[0-9a-f]{16})$/m.exec(res.stdout)?.[1];
    expect(id).toBeDefined();
    await dataPlaneCredentialReady(`stk-${project}`, env);
    return id!;
  };
  return {
    project,
    namespace: `stk-${project}`,
    repo,
    dbs,
    applyRef,
    async apply(env, files, extra = []) {
      return applyRef(env, await repo.commit(files, `apply to ${env}`), extra);
    },
    async drop() {
      for (const db of Object.values(dbs)) await db.drop();
    },
  };
}

/** Starts an operator with its own lease and waits for it. */
export async function startDataplaneOperator(name: string): Promise<OperatorProcess> {
  const operator = await startOperator({ leaseName: uniqueName(`lease-${name}`) });
  await waitForOperatorReady(operator);
  return operator;
}
