import { hash as digestOf, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { apiKeySecretName, isAcceptedApiKeyHash, keyIdOf, lastUsedPatch, readApiKeySecret, verifyApiKey, type ApiKeyRecord } from '../../core/apikeys.ts';
import { Kinds } from '../../core/api/resources.ts';
import { UnauthorizedError, UnavailableError } from '../../core/errors.ts';
import type { KubeClient } from '../../core/kube/client.ts';
import { withRetryAfter } from './limits.ts';
import type { ProjectSecrets, SecretObject } from './project-secrets.ts';

/**
 * Verifies `X-Santokit-Api-Key` against the API-key Secrets (label-selected informers, one per
 * project namespace, so a revocation or deletion takes effect as soon as the watch delivers it,
 * well within seconds). Revocation fails closed: when the watch of a key's namespace has been
 * failing for longer than `maxStalenessMs`, a revocation made meanwhile could not be seen, so
 * every key of that namespace (cached or not) is refused with 503 until the watch works again.
 * A hash with other scrypt parameters than `stk` writes is ignored (no scrypt work for it).
 *
 * scrypt is deliberately slow, so a key that verified once is remembered by the SHA-256 of the
 * presented key together with the stored hash it matched: a later request with the same key costs
 * one SHA-256 and a constant-time compare. Wrong keys are remembered too (bounded), and at most a
 * few scrypt runs proceed at once, so guessing cannot monopolise the CPU.
 *
 * In front of that, the hot path: a key verified in the last `acceptedTtlMs` is found by the
 * presented text itself (one map lookup, no hashing, no promise). Such an entry holds the key's
 * text in memory, so it is bounded in number (`MAX_ACCEPTED`, oldest dropped first) and in time
 * (a sweep drops it once the TTL has passed; a key still in use then goes through the SHA-256
 * check again and is remembered anew), and it is dropped as soon as the
 * watch reports any change of the key's Secret (revocation, deletion, a new hash). It is only
 * valid while the Secret's record is the very object it was verified against, and the fail-closed
 * staleness bound is checked on every call, so revocation applies at once as before. Only keys
 * that verified are entered: unknown text never gets in, so the map cannot be flooded. (A map
 * lookup compares whole strings after a seeded hash, so it offers no prefix oracle.)
 *
 * `lastUsedAt` is recorded as an annotation on the Secret, at most once per interval per key and
 * replica, off the request path.
 */

export interface AuthenticatedKey {
  readonly keyId: string;
  readonly project: string;
  readonly environment: string;
  /** the project namespace the key's Secret lives in */
  readonly namespace: string;
  readonly roles: readonly string[];
}

export interface AuthenticatorOptions {
  /** minimum time between two lastUsedAt writes for one key */
  readonly lastUsedIntervalMs: number;
  /** scrypt verifications allowed at once */
  readonly maxConcurrentVerifications: number;
  /** verifications that may wait for a turn; past it a request is answered 503 with Retry-After */
  readonly maxQueuedVerifications?: number;
  /** how long a namespace's key watch may fail before its keys are refused */
  readonly maxStalenessMs: number;
  /** how long a verified key's text is remembered for the hot path (default `ACCEPTED_TTL_MS`; 0: never) */
  readonly acceptedTtlMs?: number;
}

export const defaultAuthenticatorOptions: AuthenticatorOptions = { lastUsedIntervalMs: 60_000, maxConcurrentVerifications: 2, maxStalenessMs: 30_000 };

const MAX_REMEMBERED_FAILURES = 10_000;
/** Keys whose presented text is remembered after a verification, at most. */
const MAX_ACCEPTED = 10_000;
/** How long a presented text is remembered after its last full (SHA-256) check, by default. */
export const ACCEPTED_TTL_MS = 60_000;

interface Accepted {
  /** the record it was verified against: any change of the Secret replaces this object */
  readonly record: ApiKeyRecord;
  readonly namespace: string;
  /** `namespace/keyId` */
  readonly cacheKey: string;
  readonly key: AuthenticatedKey;
  readonly until: number;
}

/** The credential error: the same for a missing, malformed, unknown or revoked key (nothing to probe). */
export const AuthCode = { MissingCredential: 'MissingCredential', InvalidApiKey: 'InvalidApiKey', KeysStale: 'KeysStale' } as const;

export class ApiKeyAuthenticator {
  /** keyId → namespace → record. A key id is unique, but a copy in another namespace must not displace it. */
  private readonly byKeyId = new Map<string, Map<string, ApiKeyRecord>>();
  /** `namespace/keyId` → proof of a successful verification */
  private readonly verified = new Map<string, { hash: string; proof: Buffer }>();
  private readonly failed = new Set<string>();
  /** presented key text → the verification it passed (see the class comment) */
  private readonly accepted = new Map<string, Accepted>();
  /** `namespace/keyId` → the presented text remembered for it, to drop it with the Secret */
  private readonly acceptedText = new Map<string, string>();
  /** drops expired texts of keys no longer presented; runs only while some are remembered */
  private acceptedSweep: NodeJS.Timeout | undefined;
  private readonly lastWritten = new Map<string, number>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly secrets: ProjectSecrets,
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly options: AuthenticatorOptions = defaultAuthenticatorOptions,
  ) {
    secrets.on('upsert', (s: SecretObject) => this.index(s));
    secrets.on('delete', (s: SecretObject) => this.unindex(s));
  }

  get synced(): boolean {
    return this.secrets.synced;
  }

  private index(secret: SecretObject): void {
    const namespace = secret.metadata.namespace ?? '';
    const record = readApiKeySecret(secret);
    if (!record || (record.status === 'active' && !isAcceptedApiKeyHash(record.hash))) {
      this.log.warn({ secret: `${namespace}/${secret.metadata.name}` }, 'ignoring a malformed API-key Secret');
      this.unindex(secret);
      return;
    }
    let entries = this.byKeyId.get(record.keyId);
    if (!entries) this.byKeyId.set(record.keyId, (entries = new Map()));
    entries.set(namespace, record);
    this.forgetAccepted(`${namespace}/${record.keyId}`);
    const cached = this.verified.get(`${namespace}/${record.keyId}`);
    if (cached && cached.hash !== record.hash) this.verified.delete(`${namespace}/${record.keyId}`);
  }

  private unindex(secret: SecretObject): void {
    const namespace = secret.metadata.namespace ?? '';
    const keyId = secret.metadata.name.replace(/^santokit-apikey-/, '');
    this.byKeyId.get(keyId)?.delete(namespace);
    if (this.byKeyId.get(keyId)?.size === 0) this.byKeyId.delete(keyId);
    this.verified.delete(`${namespace}/${keyId}`);
    this.forgetAccepted(`${namespace}/${keyId}`);
  }

  private forgetAccepted(cacheKey: string): void {
    const text = this.acceptedText.get(cacheKey);
    if (text === undefined) return;
    this.acceptedText.delete(cacheKey);
    this.accepted.delete(text);
  }

  private accept(presented: string, namespace: string, record: ApiKeyRecord, key: AuthenticatedKey): void {
    const ttl = this.options.acceptedTtlMs ?? ACCEPTED_TTL_MS;
    if (ttl <= 0) return;
    const cacheKey = `${namespace}/${record.keyId}`;
    this.forgetAccepted(cacheKey);
    if (this.accepted.size >= MAX_ACCEPTED) {
      const [oldestText, oldest] = this.accepted.entries().next().value!;
      this.accepted.delete(oldestText);
      this.acceptedText.delete(oldest.cacheKey);
    }
    this.accepted.set(presented, { record, namespace, cacheKey, key, until: performance.now() + ttl });
    this.acceptedText.set(cacheKey, presented);
    if (!this.acceptedSweep) {
      this.acceptedSweep = setInterval(() => this.sweepAccepted(), Math.max(1000, ttl / 4));
      this.acceptedSweep.unref();
    }
  }

  /** Entries are in the order they were made, which is the order they expire in. */
  private sweepAccepted(): void {
    const now = performance.now();
    for (const [text, entry] of this.accepted) {
      if (entry.until > now) break;
      this.accepted.delete(text);
      this.acceptedText.delete(entry.cacheKey);
    }
    if (this.accepted.size === 0 && this.acceptedSweep) {
      clearInterval(this.acceptedSweep);
      this.acceptedSweep = undefined;
    }
  }

  /**
   * The key a request presents, verified and active; 401 otherwise. A key verified moments ago
   * is answered synchronously (the hot path); anything else, refusals included, is a promise.
   */
  authenticate(presented: string | undefined): AuthenticatedKey | Promise<AuthenticatedKey> {
    if (presented !== undefined) {
      const hit = this.accepted.get(presented);
      if (hit !== undefined) {
        const now = Date.now();
        if (hit.until > performance.now() && this.byKeyId.get(hit.record.keyId)?.get(hit.namespace) === hit.record && this.secrets.staleFor(hit.namespace, now) <= this.options.maxStalenessMs) {
          this.touch(hit.namespace, hit.record, now, hit.cacheKey);
          return hit.key;
        }
        // Expired, changed or stale: the full path decides (and refuses if it must).
        this.forgetAccepted(hit.cacheKey);
      }
    }
    return this.verify(presented);
  }

  private async verify(presented: string | undefined): Promise<AuthenticatedKey> {
    if (presented === undefined || presented === '') {
      throw new UnauthorizedError('no API key: send it in the X-Santokit-Api-Key header', { reason: AuthCode.MissingCredential });
    }
    if (!this.secrets.synced) throw new UnavailableError('the data plane is still loading API keys', { reason: 'NotReady' });
    // Built only when needed: constructing an Error captures a stack, which is not free per call.
    const invalid = () => new UnauthorizedError('the API key is not valid (unknown, revoked or malformed)', { reason: AuthCode.InvalidApiKey });
    const keyId = presented.length <= 200 ? keyIdOf(presented) : undefined;
    if (!keyId) throw invalid();
    const entries = this.byKeyId.get(keyId);
    if (!entries) {
      // The key may live in a project namespace whose Secrets are not listed yet.
      if (this.secrets.pending.length > 0) throw new UnavailableError('the data plane is still loading API keys', { reason: 'NotReady' });
      throw invalid();
    }
    const proof = digestOf('sha256', presented, 'buffer');
    for (const [namespace, record] of entries) {
      if (record.status !== 'active') continue;
      if (this.secrets.staleFor(namespace) > this.options.maxStalenessMs) {
        throw new UnavailableError('API keys cannot be checked for revocation right now; try again shortly', { reason: AuthCode.KeysStale });
      }
      if (!(await this.matches(`${namespace}/${keyId}`, presented, proof, record.hash))) continue;
      // The record may have changed (revoked) while scrypt ran: read it again.
      const current = this.byKeyId.get(keyId)?.get(namespace);
      if (!current || current.status !== 'active' || current.hash !== record.hash) continue;
      this.touch(namespace, current);
      const key: AuthenticatedKey = { keyId, project: current.project, environment: current.environment, namespace, roles: current.roles };
      this.accept(presented, namespace, current, key);
      return key;
    }
    throw invalid();
  }

  private async matches(cacheKey: string, presented: string, proof: Buffer, hash: string): Promise<boolean> {
    const cached = this.verified.get(cacheKey);
    if (cached && cached.hash === hash) return timingSafeEqual(cached.proof, proof);
    const failureKey = `${hash}:${proof.toString('base64')}`;
    if (this.failed.has(failureKey)) return false;
    const ok = await this.limited(() => verifyApiKey(presented, hash));
    if (ok) this.verified.set(cacheKey, { hash, proof });
    else {
      if (this.failed.size >= MAX_REMEMBERED_FAILURES) this.failed.clear();
      this.failed.add(failureKey);
    }
    return ok;
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.maxConcurrentVerifications && this.waiting.length >= (this.options.maxQueuedVerifications ?? 32)) {
      throw withRetryAfter(new UnavailableError('too many API-key verifications are waiting; retry shortly', { reason: 'VerificationBusy' }), 1);
    }
    while (this.running >= this.options.maxConcurrentVerifications) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** Records lastUsedAt on the key's Secret, at most once per interval; never on the request path. */
  private touch(namespace: string, record: ApiKeyRecord, now = Date.now(), key = `${namespace}/${record.keyId}`): void {
    if (now - (this.lastWritten.get(key) ?? 0) < this.options.lastUsedIntervalMs) return;
    this.lastWritten.set(key, now);
    this.client.patch(Kinds.Secret, apiKeySecretName(record.keyId), namespace, lastUsedPatch(new Date(now).toISOString())).catch((err: unknown) => {
      // Allow a retry on the next use rather than waiting a whole interval.
      this.lastWritten.delete(key);
      this.log.warn({ err, keyId: record.keyId, namespace }, 'could not record lastUsedAt');
    });
  }
}
