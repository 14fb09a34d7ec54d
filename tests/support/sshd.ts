import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFile, chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A real OpenSSH server on a loopback port for bootstrap tests (Debian package `openssh-server`;
 * `apt-get install -y openssh-server`). It runs from a temp dir with its own host key and an
 * authorized key made per test, and logs in a dedicated local user (`santokit-test`, created on
 * first use; needs root) whose PATH starts with recording stand-ins for the commands bootstrap
 * runs. Each stand-in logs its argv and answers from a per-command script: a sequence of results,
 * the last one repeating, so a test can say "docker is missing until apt-get installs it".
 *
 * When a stand-in is handed the Tailscale auth key (`--auth-key=file:…`, e.g. /dev/stdin), it
 * records only the key's SHA-256 and length, never the key.
 */

const exec = promisify(execFile);

export const STANDINS = ['apt-get', 'systemctl', 'docker', 'tailscale', 'cloud-init', 'curl', 'sh'] as const;
export type StandinName = (typeof STANDINS)[number];

export interface StandinResult {
  readonly exitCode?: number;
  readonly stdout?: string;
  readonly stderr?: string;
  /** seconds to sleep before answering (to test timeouts) */
  readonly sleepSeconds?: number;
}

export interface StandinCall {
  readonly seq: number;
  readonly command: StandinName;
  readonly argv: readonly string[];
  readonly exitCode: number | undefined;
  /** present when the command was handed an auth key file: what it read, as a hash */
  readonly authKey?: { readonly sha256: string; readonly length: number; readonly source: string };
}

export interface TestSshd {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** OpenSSH private key authorized for `user` */
  readonly privateKey: string;
  /** `SHA256:…` of the server's host key, as `ssh-keygen -l -E sha256` prints it */
  readonly hostKeyFingerprint: string;
  /** every stand-in call so far, in order */
  calls(): Promise<StandinCall[]>;
  /** the answers of the next calls of `command`: one result per call, the last one repeating */
  script(command: StandinName, results: readonly StandinResult[]): Promise<void>;
  /** forgets recorded calls and restarts every script from its first result */
  resetCalls(): Promise<void>;
  /** authorizes another public key (OpenSSH one-line format) for `user`, e.g. a key the operator generated */
  authorize(publicKey: string): Promise<void>;
  /** what sshd logged (for debugging a failing test) */
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** default `santokit-test` */
  readonly user?: string;
}

const SSHD = '/usr/sbin/sshd';

/** Starts sshd; throws with the package name when OpenSSH is not installed. */
export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found: install the Debian package openssh-server (apt-get install -y openssh-server)`);
  if (process.getuid?.() !== 0) throw new Error('tests/support/sshd.ts needs root: sshd must switch to the test user');
  const user = options.user ?? 'santokit-test';
  const { uid, gid } = await ensureUser(user);
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = await mkdtemp(join(tmpdir(), 'santokit-sshd-'));
  await chmod(dir, 0o755);
  const bin = join(dir, 'bin');
  const state = join(dir, 'state');
  await mkdir(bin, { mode: 0o755 });
  await mkdir(join(state, 'calls'), { recursive: true });
  await mkdir(join(state, 'script'), { recursive: true });
  for (const name of STANDINS) await mkdir(join(state, 'script', name), { recursive: true });
  await chownTree(state, uid, gid);

  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const clientKey = join(dir, 'client_key');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'santokit-test-host', '-f', hostKey]);
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'santokit-test-client', '-f', clientKey]);
  const { stdout: fp } = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]);
  const hostKeyFingerprint = fp.split(/\s+/)[1] ?? '';
  const privateKey = await readFile(clientKey, 'utf8');
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`, 'utf8'), { mode: 0o644 });

  for (const name of STANDINS) {
    await writeFile(join(bin, name), standinScript(name, state), { mode: 0o755 });
  }

  let child: ChildProcess | undefined;
  let port = 0;
  let output = '';
  for (let attempt = 1; attempt <= 5 && child === undefined; attempt++) {
    port = await freePort();
    const config = sshdConfig({ dir, port, user, bin });
    await writeFile(join(dir, 'sshd_config'), config, { mode: 0o600 });
    const proc = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    if (await listening(proc, port, 10_000)) child = proc;
    else proc.kill('SIGKILL');
  }
  if (child === undefined) throw new Error(`sshd did not start:\n${output}`);
  const proc = child;

  const scriptDir = (name: StandinName): string => join(state, 'script', name);

  return {
    host: '127.0.0.1',
    port,
    user,
    privateKey,
    hostKeyFingerprint,
    async calls() {
      const files = (await readdir(join(state, 'calls'))).filter((f) => f.endsWith('.cmd')).sort();
      const out: StandinCall[] = [];
      for (const file of files) {
        const base = join(state, 'calls', file.slice(0, -'.cmd'.length));
        const command = (await readFile(`${base}.cmd`, 'utf8')) as StandinName;
        const argv = (await readOptional(`${base}.argv`)).split('\0');
        argv.pop();
        const exitText = (await readOptional(`${base}.exit`)).trim();
        const keyText = (await readOptional(`${base}.authkey`)).trim();
        const [sha256 = '', length = '0', source = ''] = keyText.split(' ');
        out.push({
          seq: Number(file.slice(0, -'.cmd'.length)),
          command,
          argv,
          exitCode: exitText === '' ? undefined : Number(exitText),
          ...(keyText === '' ? {} : { authKey: { sha256, length: Number(length), source } }),
        });
      }
      return out;
    },
    async script(command, results) {
      const dirPath = scriptDir(command);
      await rm(dirPath, { recursive: true, force: true });
      await mkdir(dirPath, { recursive: true });
      let i = 0;
      for (const r of results) {
        i++;
        await writeFile(join(dirPath, `${i}.code`), `${r.exitCode ?? 0}\n`);
        await writeFile(join(dirPath, `${i}.out`), r.stdout ?? '');
        await writeFile(join(dirPath, `${i}.err`), r.stderr ?? '');
        await writeFile(join(dirPath, `${i}.sleep`), `${r.sleepSeconds ?? 0}\n`);
      }
      await writeFile(join(dirPath, 'count'), `${results.length}\n`);
      await chownTree(dirPath, uid, gid);
    },
    async resetCalls() {
      await rm(join(state, 'calls'), { recursive: true, force: true });
      await mkdir(join(state, 'calls'));
      for (const f of await readdir(state)) if (f === 'seq' || f.startsWith('count.')) await rm(join(state, f), { force: true });
      await chownTree(state, uid, gid);
    },
    async authorize(publicKey) {
      await appendFile(join(dir, 'authorized_keys'), `${publicKey.trim()}\n`);
    },
    log() {
      return output;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sshdConfig(o: { dir: string; port: number; user: string; bin: string }): string {
  return [
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(o.dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(o.dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    'PermitUserEnvironment no',
    `AllowUsers ${o.user}`,
    `SetEnv PATH=${o.bin}:/usr/local/bin:/usr/bin:/bin`,
    'MaxStartups 50',
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}

/**
 * The stand-in, in POSIX sh (no Node on the "host"). State lives in `state`: a global sequence,
 * a per-command call counter, one set of files per call (`.cmd`, `.argv` NUL-separated, `.exit`,
 * `.authkey`), and the per-command script (`N.code`, `N.out`, `N.err`, `N.sleep`, `count`).
 */
function standinScript(name: StandinName, state: string): string {
  return `#!/bin/sh
# recording stand-in for ${name} (santokit tests)
state='${state}'
name='${name}'
seq=$(( $(cat "$state/seq" 2>/dev/null || echo 0) + 1 ))
echo "$seq" > "$state/seq"
n=$(( $(cat "$state/count.$name" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/count.$name"
call="$state/calls/$(printf '%06d' "$seq")"
for a in "$@"; do printf '%s\\0' "$a"; done > "$call.argv"
for a in "$@"; do
  case "$a" in
    --auth-key=file:*|--authkey=file:*)
      f="\${a#*=file:}"
      if [ -r "$f" ]; then
        k=$(cat "$f" | tr -d '\\r\\n')
        sum=$(printf '%s' "$k" | sha256sum | cut -d' ' -f1)
        echo "$sum \${#k} $f" > "$call.authkey"
        k=''
      fi
      ;;
  esac
done
printf '%s' "$name" > "$call.cmd"
dir="$state/script/$name"
code=0
total=$(cat "$dir/count" 2>/dev/null || echo 0)
if [ "$total" -gt 0 ]; then
  i=$n
  if [ "$i" -gt "$total" ]; then i=$total; fi
  s=$(cat "$dir/$i.sleep" 2>/dev/null || echo 0)
  if [ "$s" != "0" ]; then sleep "$s"; fi
  cat "$dir/$i.out" 2>/dev/null
  cat "$dir/$i.err" >&2 2>/dev/null
  code=$(cat "$dir/$i.code")
fi
echo "$code" > "$call.exit"
exit "$code"
`;
}

async function ensureUser(user: string): Promise<{ uid: number; gid: number }> {
  const lookup = async (): Promise<{ uid: number; gid: number } | undefined> => {
    try {
      const { stdout: u } = await exec('id', ['-u', user]);
      const { stdout: g } = await exec('id', ['-g', user]);
      return { uid: Number(u.trim()), gid: Number(g.trim()) };
    } catch {
      return undefined;
    }
  };
  let ids = await lookup();
  if (ids === undefined) {
    try {
      await exec('useradd', ['--create-home', '--shell', '/bin/sh', user]);
    } catch (err) {
      // exit 9: created meanwhile by a parallel test file
      if ((err as { code?: unknown }).code !== 9) await retryShadowTool(['useradd', '--create-home', '--shell', '/bin/sh', user], [9]);
    }
    ids = await lookup();
    if (ids === undefined) throw new Error(`could not create the test user ${user}`);
  }
  // With UsePAM no, sshd refuses accounts whose password field starts with "!" (locked), which is
  // what useradd leaves. "*" means "no password" without locking public-key logins.
  const shadow = await readFile('/etc/shadow', 'utf8');
  const field = shadow.split('\n').find((l) => l.startsWith(`${user}:`))?.split(':')[1] ?? '';
  if (field.startsWith('!')) await retryShadowTool(['usermod', '-p', '*', user], []);
  return ids;
}

/** useradd/usermod fail with "cannot lock" when a parallel test file holds the lock: retry. */
async function retryShadowTool(argv: string[], okCodes: number[]): Promise<void> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await exec(cmd, args);
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number' && okCodes.includes(code)) return;
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls until sshd accepts TCP on `port` and has printed its banner line, or it exits, or the deadline passes. */
async function listening(proc: ChildProcess, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
