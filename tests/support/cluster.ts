import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { Kinds, projectNamespace, type Project } from '../../core/api/resources.ts';
import { KubeClient, type KubeObject } from '../../core/kube/client.ts';
import { redactSecrets } from '../../core/redact.ts';

/** Coordinates of the local control plane started by global-setup, and helpers to drive it as a user would. */
export const repoRoot = path.resolve(import.meta.dirname, '../..');

export function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests with \`npm test\` (tests/support/global-setup.ts starts the local control plane)`);
  return v;
}

export const adminKubeconfig = (): string => env('KUBECONFIG');
export const restrictedKubeconfig = (): string => env('SANTOKIT_KUBECONFIG_RESTRICTED');

let admin: KubeClient | undefined;
/** A client with the admin user's kubeconfig (the test's own view of the cluster). */
export async function adminClient(): Promise<KubeClient> {
  admin ??= await KubeClient.load({ kubeconfig: adminKubeconfig() });
  return admin;
}

/** A name no other test uses: `<prefix>-<6 hex>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The command line, for failure messages. */
  command: string;
}

/**
 * Asserts a command's exit code; on a mismatch the failure shows the command, its stderr and its
 * stdout, so a failing run in CI can be read from the log. Every suite asserts exit codes through this.
 */
export function expectExit(res: RunResult, code = 0): void {
  if (res.code === code) return;
  throw new Error(redactSecrets(`${res.command}: exited ${res.code}, expected ${code}\n--- stderr ---\n${headAndTail(res.stderr)}\n--- stdout ---\n${headAndTail(res.stdout)}`));
}

/** A long output as its start (where an error usually says what failed) and its end. */
function headAndTail(text: string, head = 2_000, tail = 6_000): string {
  return text.length <= head + tail ? text : `${text.slice(0, head)}\n[… ${text.length - head - tail} characters …]\n${text.slice(-tail)}`;
}

/** Runs a command to completion (no shell), with a deadline. */
export function runCommand(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, command: [path.basename(cmd), ...args].join(' ') });
    });
    // A command that exits without reading its input (tmux, for one) closes the pipe first: not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Runs the built `stk` (dist/cli/main.js) on the pinned Node, as a user would. */
export function stk(args: string[], options: { kubeconfig?: string; cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: options.kubeconfig ?? adminKubeconfig(), NO_COLOR: '1', ...options.env };
  delete childEnv.STK_PROJECT;
  delete childEnv.STK_ENV;
  return runCommand(process.execPath, [path.join(repoRoot, 'dist/cli/main.js'), ...args], { env: childEnv, ...(options.cwd ? { cwd: options.cwd } : {}), ...(options.input ? { input: options.input } : {}) });
}

/** Runs the kubectl built from the pinned Kubernetes version. */
export function kubectl(args: string[], options: { kubeconfig?: string; input?: string } = {}): Promise<RunResult> {
  return runCommand(env('SANTOKIT_KUBECTL'), ['--kubeconfig', options.kubeconfig ?? adminKubeconfig(), ...args], options.input ? { input: options.input } : {});
}

/**
 * Resolves once the API server's authorizer answers yes to `kubectl auth can-i <args>` (with the
 * given kubeconfig, or the admin's with `--as`). A RoleBinding just written reaches the authorizer
 * through its cache a moment later: wait for it before acting as that user.
 */
export async function waitForAccess(args: string[], options: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<void> {
  await eventually(
    async () => ((await kubectl(['auth', 'can-i', ...args], options.kubeconfig ? { kubeconfig: options.kubeconfig } : {})).stdout.trim() === 'yes' ? true : undefined),
    { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 100, what: `kubectl auth can-i ${args.join(' ')} to answer yes` },
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a value other than undefined, or fails after the deadline. */
export async function eventually<T>(check: () => Promise<T | undefined>, options: { timeoutMs?: number; intervalMs?: number; what: string }): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
}

export interface OperatorProcess {
  readonly child: ChildProcess;
  readonly identity: string;
  readonly healthPort: number;
  readonly logs: () => string;
  /** lines of JSON logs parsed */
  readonly records: () => Array<Record<string, unknown>>;
  /** SIGTERM (graceful) or SIGKILL; resolves with the exit code once all its output is read */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** the exit code, once the process exited and its output was read to the end (`logs()` is complete) */
  readonly exited: Promise<number | null>;
}

/** Starts `santokit-operator` (dist/operator/main.js) as a local process against the test cluster. */
export async function startOperator(options: { leaseName: string; identity?: string; args?: string[]; env?: NodeJS.ProcessEnv; kubeconfig?: string }): Promise<OperatorProcess> {
  const healthPort = await freePort();
  const identity = options.identity ?? uniqueName('operator');
  const child = spawn(
    process.execPath,
    [
      path.join(repoRoot, 'dist/operator/main.js'),
      '--bind-address',
      '127.0.0.1',
      '--health-port',
      String(healthPort),
      '--lease-name',
      options.leaseName,
      '--identity',
      identity,
      '--log-level',
      'debug',
      ...(options.args ?? []),
    ],
    { env: { ...process.env, KUBECONFIG: options.kubeconfig ?? adminKubeconfig(), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // 'close', not 'exit': 'exit' may come before the last lines written to the pipes are read.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    identity,
    healthPort,
    exited,
    logs: () => output,
    // Complete lines only: a read may end in the middle of a line the operator is still writing.
    records: () =>
      output
        .slice(0, output.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Resolves when the operator answers 200 on /readyz. */
export async function waitForOperatorReady(op: OperatorProcess, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () => {
      if (op.child.exitCode !== null) throw new Error(`operator exited with ${op.child.exitCode}:\n${op.logs()}`);
      const res = await fetch(`http://127.0.0.1:${op.healthPort}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    { timeoutMs, what: `operator ${op.identity} to be ready` },
  );
}

/**
 * Deletes projects while an operator still runs, and waits until their Connections are gone: the
 * operator's finalizer drops each Connection's data-plane role first (or, when the database URL
 * went with the namespace, names the role left behind in a Warning). Call it before stopping the
 * operator and before dropping the databases, so no namespace is left Terminating.
 */
export async function deleteProjects(projects: readonly string[], timeoutMs = 90_000): Promise<void> {
  const client = await adminClient();
  const namespaces: string[] = [];
  for (const name of projects) {
    const project = await client.find<Project & KubeObject>(Kinds.Project, name);
    if (!project) continue;
    namespaces.push(projectNamespace(project));
    await client.delete(Kinds.Project, name);
  }
  for (const namespace of namespaces) {
    await eventually(async () => ((await client.list(Kinds.Connection, { namespace })).items.length === 0 ? true : undefined), {
      timeoutMs,
      intervalMs: 500,
      what: `the Connections of namespace ${namespace} to be finalized`,
    });
  }
}
