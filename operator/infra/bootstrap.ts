import { setTimeout as delay } from 'node:timers/promises';
import { createLogger, type Logger } from '../../core/log.ts';
import { redactSecrets } from '../../core/redact.ts';
import type { BootstrapFailureCode } from '../../core/infra/run.ts';
import { HostKeyMismatchError } from './errors.ts';
import { assertUsablePrivateKey, connectSsh, probeTcp, type ExecResult, type SshSession, type SshTarget } from './ssh.ts';

/**
 * Host bootstrap over SSH: readiness, then Docker, then Tailscale. Every step detects first and
 * changes only what is missing, so a host that is already bootstrapped runs no install command.
 * Steps run in order and stop at the first failure; the result names the step and a stable code.
 *
 * Remote commands assume a Debian/Ubuntu host and a root login (what DigitalOcean images give).
 * The Tailscale auth key travels only on the SSH channel's stdin (`--auth-key=file:/dev/stdin`):
 * it is never part of a command line, a log line, a result or an error message.
 */

export type { BootstrapFailureCode };

export type StepName = 'ssh' | 'docker' | 'network';

/** Success codes per step, next to the failure codes: what `status.steps` shows. */
export type StepCode =
  | BootstrapFailureCode
  /** ssh: reachable, logged in, cloud-init finished */
  | 'ready'
  /** docker/network: already there, nothing run */
  | 'present'
  /** docker: installed now */
  | 'installed'
  /** docker: was installed but not running; enabled and started now */
  | 'started'
  /** network: joined the tailnet now */
  | 'joined'
  /** the step is switched off in the spec */
  | 'disabled'
  /** an earlier step failed */
  | 'not_run';

export interface StepResult {
  readonly step: StepName;
  readonly ok: boolean;
  /** something on the host was changed */
  readonly changed: boolean;
  readonly code: StepCode;
  /** for people: what happened; never contains a secret */
  readonly message?: string;
}

export interface BootstrapResult {
  readonly ok: boolean;
  readonly changed: boolean;
  /** the first failure, if any */
  readonly failure?: { readonly step: StepName | 'config'; readonly code: BootstrapFailureCode; readonly message: string };
  /** `SHA256:…` of the host key seen on connect */
  readonly hostKeyFingerprint?: string;
  readonly steps: readonly StepResult[];
  /** every command sent, in order (none carries a secret) */
  readonly commands: readonly string[];
  /** what `cloud-init status --wait` reported */
  readonly cloudInit?: CloudInitState;
  readonly dockerVersion?: string;
  readonly tailnet?: { readonly ips: readonly string[]; readonly tags: readonly string[] };
}

export type CloudInitState = 'done' | 'degraded' | 'error' | 'absent';

export interface BootstrapOptions {
  readonly target: SshTarget;
  readonly docker: { readonly enabled: boolean };
  /** absent: no Tailscale step */
  readonly tailscale?: {
    readonly authKey: string;
    /** tags the node must carry (subset match: the node may carry more) */
    readonly tags: readonly string[];
    /** the node's name on the tailnet; usually the droplet name */
    readonly hostname: string;
  };
  /** how long the host may take to accept SSH and finish cloud-init; default 5 minutes */
  readonly readinessTimeoutMs?: number;
  /** between readiness attempts; default 2 s */
  readonly pollIntervalMs?: number;
  /** one SSH handshake; default 15 s */
  readonly connectTimeoutMs?: number;
  /** one install command; default 10 minutes */
  readonly commandTimeoutMs?: number;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
  /** told when a step starts, so the host's status can show where the bootstrap is */
  readonly onStage?: (stage: StepName) => void;
}

/** The remote commands, exported so tests and docs name the same strings. */
export const commands = {
  ready: 'true',
  cloudInit: 'cloud-init status --wait',
  dockerVersion: "docker version --format '{{.Server.Version}}'",
  dockerInstall: [
    'DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 update',
    'DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 install -y docker.io',
  ],
  dockerEnable: 'systemctl enable --now docker',
  tailscaleStatus: 'tailscale status --json',
  /** Tailscale's documented installer, downloaded first so a failed download is not piped into sh. */
  tailscaleInstall: `set -e; f=$(mktemp); trap 'rm -f "$f"' EXIT; curl -fsSL https://tailscale.com/install.sh -o "$f"; sh "$f"`,
  tailscaleEnable: 'systemctl enable --now tailscaled',
  tailscaleJoin(hostname: string, tags: readonly string[], forceReauth: boolean): string {
    const parts = ['tailscale', 'up', '--auth-key=file:/dev/stdin', `--hostname=${hostname}`];
    if (tags.length > 0) parts.push(`--advertise-tags=${tags.join(',')}`);
    // --reset: flags not given go back to defaults, so `up` never refuses over earlier settings.
    parts.push('--reset');
    if (forceReauth) parts.push('--force-reauth');
    return parts.join(' ');
  },
} as const;

const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const TAILSCALE_TAG = /^tag:[a-z0-9-]+$/;
const USERNAME = /^[a-z_][a-z0-9_-]*$/;
const COMMAND_NOT_FOUND = 127;
/** detection and verification commands answer fast or not at all */
const PROBE_TIMEOUT_MS = 60_000;

/** Bootstraps one host. Never throws for host problems: they come back as step results. */
export async function bootstrapHost(options: BootstrapOptions): Promise<BootstrapResult> {
  const run = new BootstrapRun(options);
  return run.execute();
}

class BootstrapRun {
  readonly #o: BootstrapOptions;
  readonly #log: Logger;
  readonly #commands: string[] = [];
  readonly #steps: StepResult[] = [];
  #session: SshSession | undefined;
  #fingerprint: string | undefined;
  #cloudInit: CloudInitState | undefined;
  #dockerVersion: string | undefined;
  #tailnet: { ips: string[]; tags: string[] } | undefined;

  constructor(options: BootstrapOptions) {
    this.#o = options;
    this.#log = (options.logger ?? createLogger('bootstrap')).child({ host: options.target.host });
  }

  async execute(): Promise<BootstrapResult> {
    const problem = this.#configProblem();
    if (problem !== undefined) {
      this.#log.warn({ code: 'config_invalid' }, problem);
      return this.#result({ step: 'config', code: 'config_invalid', message: problem });
    }
    const stage = (name: StepName) => this.#o.onStage?.(name);
    try {
      stage('ssh');
      const ssh = await this.#ready();
      this.#steps.push(ssh);
      if (!ssh.ok) return this.#result();

      if (this.#o.docker.enabled) stage('docker');
      const docker = this.#o.docker.enabled ? await this.#docker() : step('docker', true, false, 'disabled', 'Docker is disabled in the spec');
      this.#steps.push(docker);
      if (!docker.ok) return this.#result();

      if (this.#o.tailscale !== undefined) stage('network');
      const network = this.#o.tailscale === undefined ? step('network', true, false, 'disabled', 'no Tailscale configured') : await this.#tailscale(this.#o.tailscale);
      this.#steps.push(network);
      return this.#result();
    } finally {
      this.#session?.close();
    }
  }

  #configProblem(): string | undefined {
    const { target, tailscale } = this.#o;
    if (target.host.trim() === '') return 'no host address to bootstrap';
    if (target.username !== undefined && !USERNAME.test(target.username)) return `"${target.username}" is not a valid SSH user name`;
    try {
      assertUsablePrivateKey(target.privateKey);
    } catch (err) {
      return err instanceof Error ? err.message : 'the SSH private key cannot be used';
    }
    if (tailscale !== undefined) {
      if (tailscale.authKey.trim() === '' || /[\r\n]/.test(tailscale.authKey.trim())) return 'the Tailscale auth key is empty or not one line';
      if (!HOSTNAME.test(tailscale.hostname) || tailscale.hostname.length > 63) return `"${tailscale.hostname}" is not a valid Tailscale host name`;
      const bad = tailscale.tags.filter((t) => !TAILSCALE_TAG.test(t));
      if (bad.length > 0) return `invalid Tailscale tags: ${bad.join(', ')} (expected tag:name)`;
    }
    return undefined;
  }

  /** TCP → SSH login → `true` → `cloud-init status --wait`, retried until the readiness deadline. */
  async #ready(): Promise<StepResult> {
    const { target } = this.#o;
    const port = target.port ?? 22;
    const timeoutMs = this.#o.readinessTimeoutMs ?? 5 * 60_000;
    const interval = this.#o.pollIntervalMs ?? 2_000;
    const deadline = Date.now() + timeoutMs;
    // The error reported is the one from the furthest stage reached (TCP < SSH < login < `true`),
    // so an attempt cut short by the deadline does not hide "authentication failed".
    let reported = { stage: -1, message: 'not tried' };
    const note = (stage: number, message: string): void => {
      if (stage >= reported.stage) reported = { stage, message };
    };

    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.#o.signal?.aborted === true) break;
      const tcp = await probeTcp(target.host, port, Math.min(remaining, 5_000));
      if (!tcp.open) {
        note(0, `TCP ${target.host}:${port} not reachable (${tcp.error ?? 'closed'})`);
      } else {
        try {
          this.#session = await connectSsh(target, { timeoutMs: Math.max(1, Math.min(deadline - Date.now(), this.#o.connectTimeoutMs ?? 15_000)) });
          this.#fingerprint = this.#session.hostKeyFingerprint;
          const probe = await this.#exec('ssh', commands.ready, { timeoutMs: Math.max(1, deadline - Date.now()) });
          if (probe.exitCode === 0) break;
          note(3, `"${commands.ready}" ${describeExit(probe)}`);
        } catch (err) {
          if (err instanceof HostKeyMismatchError) {
            this.#fingerprint = err.actual;
            return step('ssh', false, false, 'ssh_failed', err.message);
          }
          const message = err instanceof Error ? err.message : String(err);
          note(message.includes('authentication failed') ? 2 : 1, message);
        }
        this.#session?.close();
        this.#session = undefined;
      }
      this.#log.debug({ attempt, error: reported.message }, 'host not ready for SSH yet');
      const wait = Math.min(interval, deadline - Date.now());
      if (wait <= 0) break;
      await delay(wait, undefined, this.#o.signal === undefined ? {} : { signal: this.#o.signal }).catch(() => undefined);
    }
    if (this.#session === undefined) {
      return step('ssh', false, false, 'ssh_failed', `SSH not ready within ${Math.round(timeoutMs / 1000)} s: ${reported.message}`);
    }

    const wait = await this.#exec('ssh', commands.cloudInit, { timeoutMs: Math.max(1, deadline - Date.now()) });
    if (wait.timedOut) return step('ssh', false, false, 'ssh_failed', 'cloud-init did not finish before the readiness deadline');
    if (wait.exitCode === null) return step('ssh', false, false, 'ssh_failed', `the SSH session broke while waiting for cloud-init: ${tail(wait.stderr)}`);
    // cloud-init exits 0 when done, 2 when done with recoverable errors, 1 on a fatal error. A
    // failed cloud-init is reported but does not stop bootstrap: the steps below detect for themselves.
    this.#cloudInit = wait.exitCode === 0 ? 'done' : wait.exitCode === 2 ? 'degraded' : wait.exitCode === COMMAND_NOT_FOUND ? 'absent' : 'error';
    return step('ssh', true, false, 'ready', `SSH ready (${this.#fingerprint ?? 'no host key'}), cloud-init ${this.#cloudInit}`);
  }

  /** Docker: detect → (install) → (enable) → verify. */
  async #docker(): Promise<StepResult> {
    const detect = await this.#exec('docker', commands.dockerVersion, { timeoutMs: PROBE_TIMEOUT_MS });
    const broken = sessionBroken('docker', detect);
    if (broken !== undefined) return broken;
    if (detect.timedOut) return step('docker', false, false, 'docker_detect_failed', `"${commands.dockerVersion}" timed out`);
    if (detect.exitCode === 0 && detect.stdout.trim() !== '') {
      this.#dockerVersion = detect.stdout.trim();
      return step('docker', true, false, 'present', `Docker ${this.#dockerVersion} already running`);
    }

    const installed = detect.exitCode !== COMMAND_NOT_FOUND;
    if (!installed) {
      for (const command of commands.dockerInstall) {
        const res = await this.#exec('docker', command, { timeoutMs: this.#o.commandTimeoutMs });
        if (res.exitCode !== 0) return sessionBroken('docker', res) ?? step('docker', false, false, 'docker_install_failed', `"${command}" ${describeExit(res)}`);
      }
    }
    const enable = await this.#exec('docker', commands.dockerEnable, { timeoutMs: this.#o.commandTimeoutMs });
    if (enable.exitCode !== 0) {
      return sessionBroken('docker', enable) ?? step('docker', false, !installed, 'docker_install_failed', `"${commands.dockerEnable}" ${describeExit(enable)}`);
    }

    const verify = await this.#exec('docker', commands.dockerVersion, { timeoutMs: PROBE_TIMEOUT_MS });
    if (verify.exitCode !== 0 || verify.stdout.trim() === '') {
      return sessionBroken('docker', verify) ?? step('docker', false, true, 'docker_verify_failed', `Docker does not answer after ${installed ? 'starting' : 'installing'} it: "${commands.dockerVersion}" ${describeExit(verify)}`);
    }
    this.#dockerVersion = verify.stdout.trim();
    return installed
      ? step('docker', true, true, 'started', `Docker ${this.#dockerVersion} was installed but stopped; enabled and started`)
      : step('docker', true, true, 'installed', `Docker ${this.#dockerVersion} installed`);
  }

  /** Tailscale: detect → (install) → (enable) → join with the key on stdin → verify state and tags. */
  async #tailscale(ts: NonNullable<BootstrapOptions['tailscale']>): Promise<StepResult> {
    const wanted = [...new Set(ts.tags)].sort();
    const detect = await this.#exec('network', commands.tailscaleStatus, { timeoutMs: PROBE_TIMEOUT_MS });
    const broken = sessionBroken('network', detect);
    if (broken !== undefined) return broken;
    if (detect.timedOut) return step('network', false, false, 'network_install_failed', `"${commands.tailscaleStatus}" timed out`);

    const before = detect.exitCode === 0 ? parseTailscaleStatus(detect.stdout) : undefined;
    if (before !== undefined && before.state === 'Running' && isSubset(wanted, before.tags)) {
      this.#tailnet = { ips: before.ips, tags: before.tags };
      return step('network', true, false, 'present', `already on the tailnet (${before.ips.join(', ') || 'no address'})`);
    }

    if (detect.exitCode === COMMAND_NOT_FOUND) {
      const install = await this.#exec('network', commands.tailscaleInstall, { timeoutMs: this.#o.commandTimeoutMs });
      if (install.exitCode !== 0) return sessionBroken('network', install) ?? step('network', false, false, 'network_install_failed', `the Tailscale installer ${describeExit(install)}`);
    }
    if (detect.exitCode !== 0) {
      // Freshly installed, or installed with tailscaled not running.
      const enable = await this.#exec('network', commands.tailscaleEnable, { timeoutMs: this.#o.commandTimeoutMs });
      if (enable.exitCode !== 0) return sessionBroken('network', enable) ?? step('network', false, true, 'network_install_failed', `"${commands.tailscaleEnable}" ${describeExit(enable)}`);
    }

    // Logged in but without the wanted tags: only a re-authentication applies the key's tags.
    const forceReauth = before !== undefined && before.state === 'Running';
    const join = await this.#exec('network', commands.tailscaleJoin(ts.hostname, wanted, forceReauth), {
      stdin: `${ts.authKey.trim()}\n`,
      timeoutMs: this.#o.commandTimeoutMs,
      secret: ts.authKey.trim(),
    });
    if (join.exitCode !== 0) return sessionBroken('network', join) ?? step('network', false, true, 'network_join_failed', `"tailscale up" ${describeExit(join, ts.authKey.trim())}`);

    const verify = await this.#exec('network', commands.tailscaleStatus, { timeoutMs: PROBE_TIMEOUT_MS });
    const after = verify.exitCode === 0 ? parseTailscaleStatus(verify.stdout) : undefined;
    if (after === undefined) {
      return sessionBroken('network', verify) ?? step('network', false, true, 'network_join_failed', `"${commands.tailscaleStatus}" after joining ${describeExit(verify)}`);
    }
    this.#tailnet = { ips: after.ips, tags: after.tags };
    if (after.state !== 'Running') return step('network', false, true, 'network_join_failed', `joined, but the tailnet state is ${after.state}`);
    const missing = wanted.filter((t) => !after.tags.includes(t));
    if (missing.length > 0) {
      return step('network', false, true, 'network_join_failed', `on the tailnet without the tags ${missing.join(', ')}; does the auth key allow them?`);
    }
    return step('network', true, true, 'joined', `joined the tailnet as ${ts.hostname} (${after.ips.join(', ') || 'no address'})`);
  }

  async #exec(stepName: StepName, command: string, options: { stdin?: string; timeoutMs?: number | undefined; secret?: string } = {}): Promise<ExecResult> {
    const session = this.#session;
    if (session === undefined) return { exitCode: null, signal: undefined, stdout: '', stderr: 'no SSH session', timedOut: false };
    this.#commands.push(command);
    const started = Date.now();
    const res = await session.exec(command, {
      ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    this.#log.info({ step: stepName, command, exitCode: res.exitCode, timedOut: res.timedOut, ms: Date.now() - started }, 'remote command');
    if (options.secret === undefined) return res;
    return { ...res, stdout: scrub(res.stdout, options.secret), stderr: scrub(res.stderr, options.secret) };
  }

  #result(configFailure?: { step: 'config'; code: BootstrapFailureCode; message: string }): BootstrapResult {
    const names: StepName[] = ['ssh', 'docker', 'network'];
    const steps = names.map((name) => this.#steps.find((s) => s.step === name) ?? step(name, false, false, 'not_run'));
    const failed = this.#steps.find((s) => !s.ok);
    const failure =
      configFailure ?? (failed === undefined ? undefined : { step: failed.step, code: failed.code as BootstrapFailureCode, message: failed.message ?? failed.code });
    return {
      ok: failure === undefined,
      changed: this.#steps.some((s) => s.changed),
      ...(failure === undefined ? {} : { failure }),
      ...(this.#fingerprint === undefined ? {} : { hostKeyFingerprint: this.#fingerprint }),
      steps,
      commands: [...this.#commands],
      ...(this.#cloudInit === undefined ? {} : { cloudInit: this.#cloudInit }),
      ...(this.#dockerVersion === undefined ? {} : { dockerVersion: this.#dockerVersion }),
      ...(this.#tailnet === undefined ? {} : { tailnet: this.#tailnet }),
    };
  }
}

/** `status.steps` of an InfraHost: step name → code (plus `config` when the input was invalid). */
export function stepCodes(result: BootstrapResult): Record<string, StepCode> {
  const out: Record<string, StepCode> = {};
  if (result.failure?.step === 'config') out.config = 'config_invalid';
  for (const s of result.steps) out[s.step] = s.code;
  return out;
}

interface TailscaleState {
  readonly state: string;
  readonly tags: string[];
  readonly ips: string[];
}

/** Reads the fields we need from `tailscale status --json`; undefined when it is not that JSON. */
export function parseTailscaleStatus(stdout: string): TailscaleState | undefined {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object') return undefined;
  const d = data as { BackendState?: unknown; Self?: { Tags?: unknown; TailscaleIPs?: unknown } | null; TailscaleIPs?: unknown };
  if (typeof d.BackendState !== 'string') return undefined;
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return {
    state: d.BackendState,
    tags: strings(d.Self?.Tags).sort(),
    ips: strings(d.Self?.TailscaleIPs ?? d.TailscaleIPs),
  };
}

function step(name: StepName, ok: boolean, changed: boolean, code: StepCode, message?: string): StepResult {
  return message === undefined ? { step: name, ok, changed, code } : { step: name, ok, changed, code, message };
}

/** A command that got no exit status without timing out means the SSH session itself failed. */
function sessionBroken(name: StepName, res: ExecResult): StepResult | undefined {
  if (res.exitCode === null && !res.timedOut && res.signal === undefined) {
    return step(name, false, false, 'ssh_failed', `the SSH session failed during the ${name} step${res.stderr === '' ? '' : `: ${tail(res.stderr)}`}`);
  }
  return undefined;
}

function describeExit(res: ExecResult, secret?: string): string {
  if (res.timedOut) return 'timed out';
  const status = res.exitCode === null ? `was killed${res.signal === undefined ? '' : ` (${res.signal})`}` : `exited ${res.exitCode}`;
  const output = tail(res.stderr.trim() !== '' ? res.stderr : res.stdout, secret);
  return output === '' ? status : `${status}: ${output}`;
}

/** The last line(s) of output, scrubbed and capped, for a status message. */
function tail(text: string, secret?: string): string {
  const lines = scrub(text, secret).trim().split('\n').filter((l) => l.trim() !== '');
  const last = lines.slice(-3).join(' | ');
  return last.length > 400 ? `...${last.slice(last.length - 397)}` : last;
}

function scrub(text: string, secret?: string): string {
  const without = secret !== undefined && secret.length >= 4 ? text.split(secret).join('***') : text;
  return redactSecrets(without);
}

function isSubset(wanted: readonly string[], have: readonly string[]): boolean {
  return wanted.every((t) => have.includes(t));
}
