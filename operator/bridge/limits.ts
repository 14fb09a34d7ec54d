import { TooManyRequestsError, UnavailableError } from '../../core/errors.ts';

/**
 * What one caller may take from a data-plane replica. Every bound fails fast with an answer a
 * client can act on (429 or 503 with `Retry-After`) instead of queueing without end.
 */

export interface BridgeLimits {
  /** largest request body accepted (413 past it) */
  readonly maxBodyBytes: number;
  /** a body must arrive within this many ms once the call is accepted (slow uploads) */
  readonly bodyTimeoutMs: number;
  /** largest `{"data": …}` answer in bytes; a select past it is refused with a hint to page */
  readonly maxResponseBytes: number;
  /** calls past authentication at once (reading a body, planning, in the database, being answered) */
  readonly maxInFlight: number;
  /** sustained calls per second per API key (token bucket); 0 turns the per-key limit off */
  readonly keyRatePerSecond: number;
  /** calls a key may make in a burst above its rate (the bucket's size) */
  readonly keyBurst: number;
}

export const defaultLimits: BridgeLimits = {
  maxBodyBytes: 1024 * 1024,
  bodyTimeoutMs: 10_000,
  maxResponseBytes: 4 * 1024 * 1024,
  maxInFlight: 128,
  keyRatePerSecond: 200,
  keyBurst: 400,
};

/** Attaches the `Retry-After` a client should honour to an error the server answers with. */
export function withRetryAfter<E extends Error>(err: E, seconds: number): E & { retryAfterSeconds: number } {
  return Object.assign(err, { retryAfterSeconds: Math.max(1, Math.ceil(seconds)) });
}

/** The `Retry-After` seconds an error carries, if any. */
export function retryAfterOf(err: unknown): number | undefined {
  const v = (err as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Token buckets by key: each holds up to `burst` tokens and refills at `rate` per second; a call
 * takes one. Refill is computed lazily from the time of the last take, so an idle key costs
 * nothing, and a full bucket is the same as no entry (entries are dropped when the map grows).
 * Synchronous and allocation-free per call: it sits on every call's path.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.rate > 0;
  }

  /** 0 when the call may proceed, else the seconds until a token is available. */
  take(key: string): number {
    if (this.rate <= 0) return 0;
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxEntries) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.rate;
  }

  /** Drops buckets that have refilled (they behave as new ones); all of them if none has. */
  private prune(now: number): void {
    for (const [key, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(key);
    if (this.buckets.size >= this.maxEntries) this.buckets.clear();
  }
}

/** The 429 of a key past its rate. */
export function rateLimited(waitSeconds: number): TooManyRequestsError {
  return new TooManyRequestsError('this API key sent more calls than its rate allows', {
    reason: 'RateLimited',
    hint: 'slow down and retry after the number of seconds in the Retry-After header',
    retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)),
  });
}

/** The 503 of a replica at its in-flight bound. */
export function overloaded(what: string): UnavailableError {
  return withRetryAfter(new UnavailableError(`the data plane is at its bound of ${what}; retry shortly`, { reason: 'Overloaded', hint: 'retry after the number of seconds in the Retry-After header' }), 1);
}
