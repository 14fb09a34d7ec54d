/**
 * The one error hierarchy of Santokit. Every error a user can meet carries:
 * - an HTTP status (what the data plane and any API answer with),
 * - a CLI exit code (DESIGN §5),
 * - whether retrying can help (`retryable`); a non-retryable error in a reconcile is terminal:
 *   recorded in status and not retried until the object changes,
 * - a CamelCase `reason` used for conditions and Events,
 * - optionally a `hint`: what to try next.
 *
 * Messages never contain secrets: build them from names, never from URLs or tokens.
 */

/** CLI exit codes (DESIGN §5). */
export const ExitCode = {
  ok: 0,
  /** usage or invalid input */
  invalidInput: 1,
  /** rejected by the cluster: conflict, forbidden, not found, gate failed */
  rejected: 2,
  /** a dependency failed: database, cloud API, cluster unreachable, bootstrap could not run */
  dependencyFailed: 3,
  /** partial success: some hosts failed */
  partial: 10,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface FieldError {
  /** where: a file, a JSON path, a flag or an environment variable */
  readonly path: string;
  readonly message: string;
  /** 1-based position in a source file, when known */
  readonly line?: number;
  readonly column?: number;
}

export interface SantokitErrorOptions {
  readonly reason?: string;
  readonly hint?: string;
  readonly cause?: unknown;
}

export abstract class SantokitError extends Error {
  abstract readonly status: number;
  abstract readonly exitCode: ExitCode;
  abstract readonly retryable: boolean;
  readonly reason: string;
  readonly hint: string | undefined;

  constructor(message: string, defaultReason: string, options: SantokitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = options.reason ?? defaultReason;
    this.hint = options.hint;
  }

  /** The wire shape used by the data plane and `--json` output. */
  toJSON(): { code: string; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.reason, message: this.message }
      : { code: this.reason, message: this.message, hint: this.hint };
  }
}

/** Input that can never succeed as given (flags, files, resource specs): 422. */
export class ValidationError extends SantokitError {
  readonly status = 422;
  readonly exitCode = ExitCode.invalidInput;
  readonly retryable = false;
  readonly fieldErrors: readonly FieldError[];

  constructor(message: string, fieldErrors: readonly FieldError[] = [], options: SantokitErrorOptions = {}) {
    super(fieldErrors.length === 0 ? message : `${message}\n${formatFieldErrors(fieldErrors)}`, 'ValidationFailed', options);
    this.fieldErrors = fieldErrors;
  }
}

/** A malformed request or command line: 400. */
export class UsageError extends SantokitError {
  readonly status = 400;
  readonly exitCode = ExitCode.invalidInput;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'InvalidUsage', options);
  }
}

/** No credential, or a credential that is not valid: 401. */
export class UnauthorizedError extends SantokitError {
  readonly status = 401;
  readonly exitCode = ExitCode.rejected;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'Unauthorized', options);
  }
}

/** A valid credential that may not do this: 403. */
export class ForbiddenError extends SantokitError {
  readonly status = 403;
  readonly exitCode = ExitCode.rejected;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'Forbidden', options);
  }
}

export class NotFoundError extends SantokitError {
  readonly status = 404;
  readonly exitCode = ExitCode.rejected;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'NotFound', options);
  }
}

/** The request contradicts current state (already exists, a gate refused): 409. */
export class ConflictError extends SantokitError {
  readonly status = 409;
  readonly exitCode = ExitCode.rejected;
  readonly retryable: boolean;
  constructor(message: string, options: SantokitErrorOptions & { retryable?: boolean } = {}) {
    super(message, 'Conflict', options);
    this.retryable = options.retryable ?? false;
  }
}

/** A dependency (cluster, database, cloud API) could not be reached or failed: 503, retried. */
export class UnavailableError extends SantokitError {
  readonly status = 503;
  readonly exitCode = ExitCode.dependencyFailed;
  readonly retryable: boolean;
  constructor(message: string, options: SantokitErrorOptions & { retryable?: boolean } = {}) {
    super(message, 'Unavailable', options);
    this.retryable = options.retryable ?? true;
  }
}

/** 413: the body is larger than the server accepts. */
export class PayloadTooLargeError extends SantokitError {
  readonly status = 413;
  readonly exitCode = ExitCode.invalidInput;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'PayloadTooLarge', options);
  }
}

/**
 * The cluster refused an object for its size (the API server's 413, etcd's "request is too large",
 * a field over its validation limit): names the object, the size sent and the limit, never the
 * raw etcd message.
 */
export class ObjectTooLargeError extends SantokitError {
  readonly status = 413;
  readonly exitCode = ExitCode.rejected;
  readonly retryable = false;
  /** the object refused, the size sent and the limit, as far as the answer tells */
  readonly details: { kind?: string; name?: string; sentBytes?: number; limitBytes?: number; limit?: string };
  constructor(message: string, details: ObjectTooLargeError['details'], options: SantokitErrorOptions = {}) {
    super(message, 'ObjectTooLarge', options);
    this.details = details;
  }
}

/** 429: the caller sent more than its rate allows; `retryAfterSeconds` says when to try again. */
export class TooManyRequestsError extends SantokitError {
  readonly status = 429;
  readonly exitCode = ExitCode.rejected;
  readonly retryable = true;
  readonly retryAfterSeconds: number;
  constructor(message: string, options: SantokitErrorOptions & { retryAfterSeconds?: number } = {}) {
    super(message, 'TooManyRequests', options);
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/** 405: the route exists but not for this method. */
export class MethodNotAllowedError extends SantokitError {
  readonly status = 405;
  readonly exitCode = ExitCode.invalidInput;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'MethodNotAllowed', options);
  }
}

/** Some items succeeded and some failed (e.g. hosts): the CLI exits 10. */
export class PartialFailureError extends SantokitError {
  readonly status = 207;
  readonly exitCode = ExitCode.partial;
  readonly retryable = false;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'PartialFailure', options);
  }
}

/** A bug: something we did not expect. Retryable, because a transient cause is the likelier one. */
export class InternalError extends SantokitError {
  readonly status = 500;
  readonly exitCode = ExitCode.dependencyFailed;
  readonly retryable = true;
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, 'InternalError', options);
  }
}

export function isSantokitError(err: unknown): err is SantokitError {
  return err instanceof SantokitError;
}

/** Wraps anything thrown into the hierarchy; unknown throwables become InternalError. */
export function asSantokitError(err: unknown): SantokitError {
  if (err instanceof SantokitError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors
    .map((e) => {
      const at = e.line === undefined ? e.path : `${e.path}:${e.line}${e.column === undefined ? '' : `:${e.column}`}`;
      return `  - ${at}: ${e.message}`;
    })
    .join('\n');
}
