import { ExitCode } from '../errors.ts';

/**
 * What `stk infra up` and the InfraHost reconciler agree on, as plain data: the annotations they
 * exchange, the *run* record, and how a host's status reads as an outcome and an exit code.
 * Pure: no I/O. The CLI imports this file, so it imports nothing from Kubernetes or the terminal.
 *
 * A run is one request to bring a host in line: one `stk infra up` (the request annotation,
 * written by stk), or one new generation (a spec change from GitOps, no request). The operator
 * keeps the run record in an annotation:
 * - `created` / `reconciled` say what it did to the host during the run, so `status.action`
 *   (created / reconciled / unchanged) describes this run and not the whole life of the host:
 *   a re-run with nothing to do reads `unchanged`;
 * - `bootstrap` is set once bootstrap ran in the run (each run runs it once: detection only on a
 *   bootstrapped host, so a re-run also re-checks Docker and Tailscale);
 * - `handled` is written only after the status of the settled run was written, so a reader that
 *   sees `handled` for its request reads that run's status, never the previous one.
 *
 * Why an annotation and not status: the InfraHost status schema has no field for it, and a
 * status patch cannot carry metadata. A `status.run` field in the CRD would make the handled
 * marker and the status one write (and this ordering rule unnecessary).
 */

/** Written by `stk infra up` on every run: a random id; a new value asks for a new run. */
export const ANNOTATION_RECONCILE_REQUEST = 'santokit.io/reconcile-request';
/** The run record (JSON), written by the operator. */
export const ANNOTATION_RUN = 'santokit.io/run';
/** The provider fingerprint of the SSH key the host was created with (for `sshKey` drift). */
export const ANNOTATION_SSH_KEY = 'santokit.io/ssh-key-fingerprint';
/** A resize in flight (JSON `{inProgress, actionId?, failedSize?}`), kept across passes and restarts. */
export const ANNOTATION_RESIZE = 'santokit.io/resize';

/** Why a bootstrap failed, per step (the codes `status.steps` and `stk infra up` show). */
export type BootstrapFailureCode =
  | 'ssh_failed'
  | 'docker_detect_failed'
  | 'docker_install_failed'
  | 'docker_verify_failed'
  | 'network_install_failed'
  | 'network_join_failed'
  | 'config_invalid';

export type HostAction = 'created' | 'unchanged' | 'reconciled';

export interface RunRecord {
  /** the request annotation the run answers; '' for a run started by a spec change alone */
  readonly request: string;
  /** metadata.generation when the run started */
  readonly generation: number;
  created?: boolean;
  reconciled?: boolean;
  bootstrap?: 'ok' | 'failed';
  handled?: boolean;
}

/** Reads the run annotation; undefined when absent or not a run record. */
export function parseRun(text: string | undefined): RunRecord | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    const v = JSON.parse(text) as Partial<RunRecord> | null;
    if (v === null || typeof v !== 'object' || typeof v.request !== 'string' || typeof v.generation !== 'number') return undefined;
    return {
      request: v.request,
      generation: v.generation,
      ...(v.created === true ? { created: true } : {}),
      ...(v.reconciled === true ? { reconciled: true } : {}),
      ...(v.bootstrap === 'ok' || v.bootstrap === 'failed' ? { bootstrap: v.bootstrap } : {}),
      ...(v.handled === true ? { handled: true } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The run annotation's text: keys in a fixed order so equal records are equal strings. */
export function formatRun(run: RunRecord): string {
  return JSON.stringify({
    request: run.request,
    generation: run.generation,
    ...(run.created === true ? { created: true } : {}),
    ...(run.reconciled === true ? { reconciled: true } : {}),
    ...(run.bootstrap === undefined ? {} : { bootstrap: run.bootstrap }),
    ...(run.handled === true ? { handled: true } : {}),
  });
}

/** The run a pass belongs to: the recorded one if request and generation still match, else a new one. */
export function currentRun(recorded: RunRecord | undefined, request: string | undefined, generation: number | undefined): RunRecord {
  const req = request ?? '';
  const gen = generation ?? 0;
  if (recorded !== undefined && recorded.request === req && recorded.generation === gen) return { ...recorded };
  return { request: req, generation: gen };
}

export function runAction(run: RunRecord): HostAction {
  return run.created === true ? 'created' : run.reconciled === true ? 'reconciled' : 'unchanged';
}

// ---------------------------------------------------------------------------------------------

/** The status fields an outcome is read from (a structural subset of the InfraHost status). */
export interface HostStatusView {
  readonly phase?: string;
  readonly providerId?: string;
  readonly publicIPv4?: string;
  readonly action?: string;
  readonly steps?: Readonly<Record<string, string>>;
  readonly drift?: readonly string[];
  readonly conditions?: ReadonlyArray<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
}

export type HostOutcome =
  | { readonly kind: 'ready' }
  /** bootstrap ran and a step failed (the host exists) */
  | { readonly kind: 'bootstrapFailed'; readonly code: BootstrapFailureCode; readonly message: string }
  /** the resource, a Secret it names, or a key is unusable: the user must fix input */
  | { readonly kind: 'configInvalid'; readonly message: string }
  /** the cloud side failed or needs a person: API errors, duplicate or missing hosts */
  | { readonly kind: 'cloudFailed'; readonly reason: string; readonly message: string }
  /** no settled answer (yet) */
  | { readonly kind: 'pending'; readonly reason: string; readonly message: string };

function condition(status: HostStatusView | undefined, type: string): { status: string; reason: string; message: string } | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

const BOOTSTRAP_FAILURES: ReadonlySet<string> = new Set<BootstrapFailureCode>([
  'ssh_failed',
  'docker_detect_failed',
  'docker_install_failed',
  'docker_verify_failed',
  'network_install_failed',
  'network_join_failed',
]);

/** Reads a host's status as one outcome. Only meaningful once the run is handled. */
export function hostOutcome(status: HostStatusView | undefined): HostOutcome {
  const ready = condition(status, 'Ready');
  if (ready?.status === 'True') return { kind: 'ready' };
  const steps = status?.steps ?? {};
  if (steps.config === 'config_invalid') return { kind: 'configInvalid', message: ready?.message ?? 'the configuration is invalid' };
  const failed = ['ssh', 'docker', 'network'].map((s) => steps[s]).find((code) => code !== undefined && BOOTSTRAP_FAILURES.has(code));
  const bootstrapped = condition(status, 'Bootstrapped');
  if (failed !== undefined && bootstrapped?.status === 'False') {
    return { kind: 'bootstrapFailed', code: failed as BootstrapFailureCode, message: bootstrapped.message };
  }
  const stalled = condition(status, 'Stalled');
  if (status?.phase === 'Failed' || stalled?.status === 'True' || ready?.status === 'False') {
    return { kind: 'cloudFailed', reason: ready?.reason ?? 'Failed', message: ready?.message ?? '' };
  }
  return { kind: 'pending', reason: ready?.reason ?? 'Pending', message: ready?.message ?? 'not reconciled yet' };
}

/**
 * The exit code of `stk infra up` (DESIGN §5): invalid input 1 first, then a cloud failure or a
 * host with no answer 3; bootstrap failures are 10 while at least one host is ready, else 3
 * (bootstrap could not run anywhere); 0 when every host is ready.
 */
export function exitCodeFor(outcomes: readonly HostOutcome[]): number {
  if (outcomes.some((o) => o.kind === 'configInvalid')) return ExitCode.invalidInput;
  if (outcomes.some((o) => o.kind === 'cloudFailed' || o.kind === 'pending')) return ExitCode.dependencyFailed;
  if (outcomes.some((o) => o.kind === 'bootstrapFailed')) return outcomes.some((o) => o.kind === 'ready') ? ExitCode.partial : ExitCode.dependencyFailed;
  return ExitCode.ok;
}

/** The BOOTSTRAP column: `ok`, the failing step's code, `not_run` (the host never got that far) or `pending`. */
export function bootstrapColumn(outcome: HostOutcome): string {
  switch (outcome.kind) {
    case 'ready':
      return 'ok';
    case 'bootstrapFailed':
      return outcome.code;
    case 'configInvalid':
      return 'config_invalid';
    case 'cloudFailed':
      return 'not_run';
    case 'pending':
      return 'pending';
  }
}
