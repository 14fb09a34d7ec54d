import {
  ConflictError,
  ExitCode,
  NotFoundError,
  SantokitError,
  UnavailableError,
  ValidationError,
  type SantokitErrorOptions,
} from '../../core/errors.ts';

/**
 * Errors of the cloud-provider layer. Each is a subclass of the one hierarchy in core/errors.ts and
 * carries `details`: what the cloud API said (status, its error id, its request id) and which
 * operation we attempted. Details and messages are built from operation names and the API's own
 * message only; never from the request, its headers or the token.
 */

export interface CloudApiDetails {
  readonly provider: string;
  /** what we tried, e.g. `GET /v2/droplets/123` (paths carry ids and tag names, never secrets) */
  readonly operation: string;
  /** HTTP status, or 0 when no response arrived */
  readonly status: number;
  /** the provider's error id, e.g. DigitalOcean's `not_found` */
  readonly code?: string;
  /** the provider's request id, for support tickets; deliberately kept out of `message` */
  readonly requestId?: string;
}

/** The cloud API refused our credentials (401) or their scope (403). Terminal: the Secret must be fixed. */
export class CloudCredentialsError extends SantokitError {
  readonly status: number;
  readonly exitCode = ExitCode.invalidInput;
  readonly retryable = false;
  readonly details: CloudApiDetails;
  constructor(message: string, details: CloudApiDetails, options: SantokitErrorOptions = {}) {
    super(message, details.status === 403 ? 'CloudCredentialsForbidden' : 'CloudCredentialsRejected', options);
    this.status = details.status === 403 ? 403 : 401;
    this.details = details;
  }
}

/** The resource does not exist at the provider (404). */
export class CloudNotFoundError extends NotFoundError {
  readonly details: CloudApiDetails;
  constructor(message: string, details: CloudApiDetails, options: SantokitErrorOptions = {}) {
    super(message, { reason: 'CloudResourceNotFound', ...options });
    this.details = details;
  }
}

/** The provider rejected the request as invalid (400/422): e.g. an unknown size slug. Terminal. */
export class CloudRequestRejectedError extends ValidationError {
  readonly details: CloudApiDetails;
  constructor(message: string, details: CloudApiDetails, options: SantokitErrorOptions = {}) {
    super(message, [], { reason: 'CloudRequestRejected', ...options });
    this.details = details;
  }
}

/** The provider reports a conflicting state (409). */
export class CloudConflictError extends ConflictError {
  readonly details: CloudApiDetails;
  constructor(message: string, details: CloudApiDetails, options: SantokitErrorOptions = {}) {
    super(message, { reason: 'CloudConflict', ...options });
    this.details = details;
  }
}

/** The provider could not answer (5xx, network, timeout) after bounded retries. Retryable. */
export class CloudUnavailableError extends UnavailableError {
  readonly details: CloudApiDetails;
  constructor(message: string, details: CloudApiDetails, options: SantokitErrorOptions = {}) {
    super(message, { reason: 'CloudUnavailable', ...options });
    this.details = details;
  }
}

/**
 * Rate limited for longer than one call is willing to wait. Retryable: the caller should requeue
 * after `retryAfterMs` rather than block a worker.
 */
export class CloudRateLimitedError extends UnavailableError {
  readonly details: CloudApiDetails;
  readonly retryAfterMs: number;
  constructor(message: string, details: CloudApiDetails, retryAfterMs: number, options: SantokitErrorOptions = {}) {
    super(message, { reason: 'CloudRateLimited', ...options });
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A host could not be reached or logged into over SSH (yet). Retryable: hosts boot slowly. */
export class SshUnavailableError extends UnavailableError {
  constructor(message: string, options: SantokitErrorOptions = {}) {
    super(message, { reason: 'SshUnavailable', ...options });
  }
}

/**
 * The host presented a different SSH host key than the one recorded for it. Terminal: it may be a
 * rebuilt host or a machine in the middle; a person decides (clear the recorded fingerprint).
 */
export class HostKeyMismatchError extends ConflictError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, options: SantokitErrorOptions = {}) {
    super(`the SSH host key changed: expected ${expected}, the host presented ${actual}`, {
      reason: 'HostKeyChanged',
      hint: 'if the host was rebuilt on purpose, clear status.hostKeyFingerprint so the new key is recorded',
      ...options,
    });
    this.expected = expected;
    this.actual = actual;
  }
}
