import { setTimeout as delay } from 'node:timers/promises';
import { InternalError, ValidationError } from '../../core/errors.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { redactSecrets } from '../../core/redact.ts';
import {
  CloudConflictError,
  CloudCredentialsError,
  CloudNotFoundError,
  CloudRateLimitedError,
  CloudRequestRejectedError,
  CloudUnavailableError,
  type CloudApiDetails,
} from './errors.ts';
import type {
  ActionStatus,
  CloudHost,
  CloudProvider,
  CreateHostRequest,
  DeleteOutcome,
  HostAction,
  HostStatus,
  SshKeyInfo,
} from './provider.ts';

/**
 * The DigitalOcean provider: our own small client on the global `fetch`.
 *
 * - Bearer token, kept in a private field; it never appears in a message, a log line or an error
 *   (errors are built from the operation name and DigitalOcean's own message, redacted).
 * - Lists follow `links.pages.next` with `per_page=200`. The next link is re-anchored on the
 *   configured base URL, so the token is only ever sent to that origin.
 * - 429: waits for `retry-after` (or `ratelimit-reset`) when that is short, else throws
 *   CloudRateLimitedError carrying the wait so the caller requeues instead of blocking. The pause
 *   is client-wide: no request of this client (one per token, as DigitalOcean counts) goes out
 *   before it ends.
 * - The budget: once `ratelimit-remaining` falls to the reserve (5% of `ratelimit-limit`, at
 *   least 10), requests are spread evenly over the time left until `ratelimit-reset`, so the
 *   budget is not spent before it renews. A wait longer than `maxRetryAfterMs` is not sat out:
 *   CloudRateLimitedError tells the caller when to come back.
 * - 5xx and network errors: bounded exponential backoff with full jitter, but only for calls that
 *   are safe to repeat. A create is never retried after a 5xx: DigitalOcean may have created the
 *   droplet, and the reconciler's ownership-tag lookup, not a blind retry, finds out.
 * - SSH key lookups are served from a cache (that endpoint allows 10 requests a minute).
 */

export const DIGITALOCEAN_API = 'https://api.digitalocean.com';
const PER_PAGE = 200;
const MAX_PAGES = 500;

export interface DigitalOceanOptions {
  /** the API token (a trailing newline from a Secret is trimmed) */
  readonly token: string;
  /** API origin; default https://api.digitalocean.com (tests point it at the simulator) */
  readonly baseUrl?: string;
  readonly logger?: Logger;
  /** total attempts per call, including the first; default 5 */
  readonly maxAttempts?: number;
  /** first backoff step for 5xx/network retries; default 500 ms, doubling up to `backoffMaxMs` */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** the longest rate-limit wait one call sits out before giving up with CloudRateLimitedError; default 30 s */
  readonly maxRetryAfterMs?: number;
  /** per attempt; default 30 s */
  readonly requestTimeoutMs?: number;
  /** slow down once `ratelimit-remaining` is at or below this; default 5% of `ratelimit-limit`, at least 10 */
  readonly rateLimitReserve?: number;
  /** how long an SSH key listing is reused; default 60 s */
  readonly sshKeyCacheTtlMs?: number;
  /** injectable for tests */
  readonly fetch?: typeof globalThis.fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly userAgent?: string;
}

/** The last rate-limit headers seen, for metrics and logs. */
export interface RateLimitState {
  readonly limit: number;
  readonly remaining: number;
  /** epoch milliseconds */
  readonly resetAt: number;
}

/** Creates the DigitalOcean implementation of CloudProvider. */
export function createDigitalOceanProvider(options: DigitalOceanOptions): DigitalOceanProvider {
  return new DigitalOceanProvider(options);
}

interface CallOptions {
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** safe to send again after a 5xx or a lost response */
  readonly idempotent: boolean;
  /** statuses that count as success */
  readonly expect: readonly number[];
  /** statuses returned to the caller instead of thrown */
  readonly tolerate?: readonly number[];
}

interface CallResult {
  readonly status: number;
  readonly body: unknown;
}

interface DoErrorBody {
  id?: unknown;
  message?: unknown;
  request_id?: unknown;
}

export class DigitalOceanProvider implements CloudProvider {
  readonly name = 'digitalocean';
  readonly #token: string;
  readonly #base: URL;
  readonly #log: Logger;
  readonly #fetch: typeof globalThis.fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #maxAttempts: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #requestTimeoutMs: number;
  readonly #sshKeyCacheTtlMs: number;
  readonly #userAgent: string;
  readonly #rateLimitReserve: number | undefined;
  #rateLimit: RateLimitState | undefined;
  /** epoch ms: no request of this client goes out before (a 429's retry-after) */
  #pausedUntil = 0;
  /** while the budget is low: the earliest start of the next request */
  #nextSlotAt = 0;
  #sshKeys: { keys: SshKeyInfo[]; fetchedAt: number } | undefined;
  #sshKeysInFlight: Promise<SshKeyInfo[]> | undefined;

  constructor(options: DigitalOceanOptions) {
    const token = options.token.trim();
    if (token === '' || /\s/.test(token)) {
      throw new ValidationError('the DigitalOcean API token is empty or malformed', [], {
        reason: 'CloudCredentialsMissing',
        hint: 'put the token (one line) in the Secret named by credentialsSecretRef',
      });
    }
    this.#token = token;
    this.#base = parseBaseUrl(options.baseUrl ?? DIGITALOCEAN_API);
    this.#log = (options.logger ?? createLogger('digitalocean')).child({ provider: 'digitalocean' });
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.#backoffBaseMs = options.backoffBaseMs ?? 500;
    this.#backoffMaxMs = options.backoffMaxMs ?? 8_000;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#sshKeyCacheTtlMs = options.sshKeyCacheTtlMs ?? 60_000;
    this.#userAgent = options.userAgent ?? 'santokit-operator';
    this.#rateLimitReserve = options.rateLimitReserve;
  }

  /** The rate-limit headers of the last response, if any. */
  get rateLimit(): RateLimitState | undefined {
    return this.#rateLimit;
  }

  /** Never print the token, whatever inspects this object. */
  toJSON(): { provider: string; baseUrl: string } {
    return { provider: this.name, baseUrl: this.#base.origin };
  }

  async createHost(request: CreateHostRequest): Promise<CloudHost> {
    const body: Record<string, unknown> = {
      name: request.name,
      region: request.region,
      size: request.size,
      image: /^\d+$/.test(request.image) ? Number(request.image) : request.image,
      ssh_keys: request.sshKeys.map((k) => (/^\d+$/.test(k) ? Number(k) : k)),
      tags: [...request.tags],
    };
    if (request.userData !== undefined) body.user_data = request.userData;
    const res = await this.#call('POST', '/v2/droplets', { body, idempotent: false, expect: [202] });
    const droplet = (res.body as { droplet?: DoDroplet } | undefined)?.droplet;
    if (droplet === undefined) throw this.#malformed('POST /v2/droplets', 'droplet');
    return toCloudHost(droplet);
  }

  async listHostsByTag(tag: string): Promise<CloudHost[]> {
    const droplets = await this.#listAll<DoDroplet>('/v2/droplets', 'droplets', { tag_name: tag });
    return droplets.map(toCloudHost).sort(byNumericId);
  }

  async listHostsByName(name: string): Promise<CloudHost[]> {
    const droplets = await this.#listAll<DoDroplet>('/v2/droplets', 'droplets', { name });
    return droplets.map(toCloudHost).sort(byNumericId);
  }

  async getHost(id: string): Promise<CloudHost | undefined> {
    const path = `/v2/droplets/${dropletId(id)}`;
    const res = await this.#call('GET', path, { idempotent: true, expect: [200], tolerate: [404] });
    if (res.status === 404) return undefined;
    const droplet = (res.body as { droplet?: DoDroplet } | undefined)?.droplet;
    if (droplet === undefined) throw this.#malformed(`GET ${path}`, 'droplet');
    return toCloudHost(droplet);
  }

  async deleteHost(id: string): Promise<DeleteOutcome> {
    const res = await this.#call('DELETE', `/v2/droplets/${dropletId(id)}`, { idempotent: true, expect: [204], tolerate: [404] });
    return res.status === 404 ? 'absent' : 'deleted';
  }

  async findSshKeyByName(name: string): Promise<SshKeyInfo | undefined> {
    const matches = (await this.#sshKeyList()).filter((k) => k.name === name);
    if (matches.length > 1) {
      throw new ValidationError(`several SSH keys at DigitalOcean are named "${name}" (ids ${matches.map((k) => k.id).join(', ')})`, [], {
        reason: 'SshKeyAmbiguous',
        hint: 'rename or delete all but one of them, or name another key in infra/hosts.yaml',
      });
    }
    return matches[0];
  }

  async createSshKey(name: string, publicKey: string): Promise<SshKeyInfo> {
    const res = await this.#call('POST', '/v2/account/keys', { body: { name, public_key: publicKey.trim() }, idempotent: false, expect: [201] });
    const key = (res.body as { ssh_key?: DoSshKey } | undefined)?.ssh_key;
    if (key === undefined) throw this.#malformed('POST /v2/account/keys', 'ssh_key');
    const info = toSshKeyInfo(key);
    if (this.#sshKeys !== undefined) this.#sshKeys = { ...this.#sshKeys, keys: [...this.#sshKeys.keys, info] };
    return info;
  }

  async tagHost(id: string, tags: readonly string[]): Promise<void> {
    const resources = { resources: [{ resource_id: dropletId(id), resource_type: 'droplet' }] };
    for (const tag of [...new Set(tags)].sort()) {
      const path = `/v2/tags/${encodeURIComponent(tag)}/resources`;
      const res = await this.#call('POST', path, { body: resources, idempotent: true, expect: [204], tolerate: [404] });
      if (res.status === 404) {
        // The tag does not exist yet: create it, then tag. Creating a tag is idempotent.
        await this.#call('POST', '/v2/tags', { body: { name: tag }, idempotent: true, expect: [201, 200] });
        await this.#call('POST', path, { body: resources, idempotent: true, expect: [204] });
      }
    }
  }

  shutdownHost(id: string): Promise<HostAction> {
    return this.#dropletAction(id, { type: 'shutdown' });
  }

  powerOffHost(id: string): Promise<HostAction> {
    return this.#dropletAction(id, { type: 'power_off' });
  }

  powerOnHost(id: string): Promise<HostAction> {
    return this.#dropletAction(id, { type: 'power_on' });
  }

  resizeHost(id: string, size: string): Promise<HostAction> {
    // disk: false resizes CPU and RAM only. A disk resize is permanent and would forbid ever
    // going back to a smaller size, so it is not something a spec change should do silently.
    return this.#dropletAction(id, { type: 'resize', size, disk: false });
  }

  async getAction(id: string): Promise<HostAction> {
    if (!/^\d+$/.test(id)) throw new ValidationError(`"${id}" is not a DigitalOcean action id`);
    const res = await this.#call('GET', `/v2/actions/${id}`, { idempotent: true, expect: [200] });
    const action = (res.body as { action?: DoAction } | undefined)?.action;
    if (action === undefined) throw this.#malformed(`GET /v2/actions/${id}`, 'action');
    return toHostAction(action);
  }

  // -------------------------------------------------------------------------------------------

  async #dropletAction(id: string, body: Record<string, unknown>): Promise<HostAction> {
    const path = `/v2/droplets/${dropletId(id)}/actions`;
    const res = await this.#call('POST', path, { body, idempotent: false, expect: [201] });
    const action = (res.body as { action?: DoAction } | undefined)?.action;
    if (action === undefined) throw this.#malformed(`POST ${path}`, 'action');
    return toHostAction(action);
  }

  async #sshKeyList(): Promise<SshKeyInfo[]> {
    const cached = this.#sshKeys;
    if (cached !== undefined && this.#now() - cached.fetchedAt < this.#sshKeyCacheTtlMs) return cached.keys;
    // Concurrent lookups share one listing.
    this.#sshKeysInFlight ??= this.#listAll<DoSshKey>('/v2/account/keys', 'ssh_keys', {})
      .then((keys) => {
        const infos = keys.map(toSshKeyInfo);
        this.#sshKeys = { keys: infos, fetchedAt: this.#now() };
        return infos;
      })
      .finally(() => {
        this.#sshKeysInFlight = undefined;
      });
    return this.#sshKeysInFlight;
  }

  async #listAll<T>(path: string, key: string, query: Readonly<Record<string, string>>): Promise<T[]> {
    const items: T[] = [];
    const seen = new Set<string>();
    let next: string | undefined = withQuery(path, { ...query, page: '1', per_page: String(PER_PAGE) });
    for (let page = 0; next !== undefined; page++) {
      if (page >= MAX_PAGES || seen.has(next)) {
        throw new InternalError(`GET ${path}: DigitalOcean pagination did not end after ${page} pages`);
      }
      seen.add(next);
      const res = await this.#call('GET', next, { idempotent: true, expect: [200] });
      const body = res.body as ({ links?: { pages?: { next?: unknown } } } & Record<string, unknown>) | undefined;
      const pageItems = body?.[key];
      if (!Array.isArray(pageItems)) throw this.#malformed(`GET ${path}`, key);
      items.push(...(pageItems as T[]));
      const link = body?.links?.pages?.next;
      next = typeof link === 'string' && link !== '' ? this.#reanchor(link, path) : undefined;
    }
    return items;
  }

  /** Keeps path and query of a `next` link but sends it to our base URL, and only for the same endpoint. */
  #reanchor(link: string, path: string): string {
    let url: URL;
    try {
      url = new URL(link, this.#base);
    } catch {
      throw new InternalError(`GET ${path}: DigitalOcean returned an unusable next-page link`);
    }
    if (url.pathname !== path) throw new InternalError(`GET ${path}: the next-page link points at another endpoint`);
    if (!url.searchParams.has('per_page')) url.searchParams.set('per_page', String(PER_PAGE));
    return `${url.pathname}${url.search}`;
  }

  async #call(method: string, pathAndQuery: string, options: CallOptions): Promise<CallResult> {
    const operation = `${method} ${pathAndQuery.split('?')[0] ?? pathAndQuery}`;
    const url = new URL(pathAndQuery, this.#base);
    let backoffStep = 0;
    /** the client-wide pause this call already sat out itself */
    let honoured = 0;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.#maxAttempts;
      await this.#awaitTurn(operation, honoured);
      const started = this.#now();
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept: 'application/json',
            'user-agent': this.#userAgent,
            ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
          signal: AbortSignal.timeout(this.#requestTimeoutMs),
        });
      } catch (err) {
        const what = describeNetworkError(err);
        if (options.idempotent && !last) {
          const wait = this.#backoff(backoffStep++);
          this.#log.warn({ operation, attempt, waitMs: wait, error: what }, 'DigitalOcean request failed, retrying');
          await this.#sleep(wait);
          continue;
        }
        throw new CloudUnavailableError(`${operation}: no response from DigitalOcean (${what})`, { provider: this.name, operation, status: 0 }, {
          cause: new Error(this.#scrub(what)),
        });
      }

      this.#recordRateLimit(response.headers);
      this.#log.debug({ operation, status: response.status, attempt, ms: this.#now() - started, rateLimitRemaining: this.#rateLimit?.remaining }, 'DigitalOcean call');

      if (options.expect.includes(response.status) || options.tolerate?.includes(response.status)) {
        const text = await response.text();
        if (text === '') return { status: response.status, body: undefined };
        try {
          return { status: response.status, body: JSON.parse(text) as unknown };
        } catch {
          throw this.#malformed(operation, 'JSON');
        }
      }

      const errorBody = await readErrorBody(response);
      const details: CloudApiDetails = {
        provider: this.name,
        operation,
        status: response.status,
        ...(typeof errorBody.id === 'string' ? { code: errorBody.id } : {}),
        ...(typeof errorBody.request_id === 'string' ? { requestId: errorBody.request_id } : {}),
      };
      const said = this.#scrub(typeof errorBody.message === 'string' ? errorBody.message : response.statusText || 'no message');

      if (response.status === 429) {
        const wait = this.#rateLimitWait(response.headers, backoffStep);
        // Every request of this client waits, not only this one.
        this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + wait);
        if (wait <= this.#maxRetryAfterMs && !last) {
          backoffStep++;
          this.#log.warn({ operation, attempt, waitMs: wait }, 'DigitalOcean rate limit reached, waiting');
          honoured = this.#pausedUntil;
          await this.#sleep(wait);
          continue;
        }
        throw new CloudRateLimitedError(`${operation}: DigitalOcean rate limit reached (${said})`, details, wait, {
          hint: `retry in ${Math.ceil(wait / 1000)} s`,
        });
      }
      if (response.status >= 500) {
        if (options.idempotent && !last) {
          const wait = this.#backoff(backoffStep++);
          this.#log.warn({ operation, attempt, status: response.status, waitMs: wait }, 'DigitalOcean server error, retrying');
          await this.#sleep(wait);
          continue;
        }
        throw new CloudUnavailableError(`${operation}: DigitalOcean answered ${response.status} (${said})`, details);
      }
      throw this.#clientError(operation, response.status, said, details);
    }
  }

  /**
   * Waits for this client's turn: the end of a 429's pause (unless this call sat it out itself,
   * `honoured`), and, while the budget is low, a slot spaced so that the remaining requests last
   * until the reset. A wait longer than `maxRetryAfterMs` is a CloudRateLimitedError.
   */
  async #awaitTurn(operation: string, honoured: number): Promise<void> {
    const now = this.#now();
    let at = this.#pausedUntil > honoured ? this.#pausedUntil : 0;
    const budget = this.#rateLimit;
    let spacing = 0;
    if (budget !== undefined && budget.resetAt > now) {
      const reserve = this.#rateLimitReserve ?? Math.max(10, Math.ceil(budget.limit * 0.05));
      if (budget.remaining <= reserve) {
        spacing = Math.ceil((budget.resetAt - now) / Math.max(1, budget.remaining));
        at = Math.max(at, now, this.#nextSlotAt);
      }
    }
    const wait = at - now;
    if (wait <= this.#maxRetryAfterMs && spacing > 0) this.#nextSlotAt = Math.max(now, at) + spacing;
    if (wait <= 0) return;
    if (wait > this.#maxRetryAfterMs) {
      throw new CloudRateLimitedError(`${operation}: holding back for the DigitalOcean rate limit`, { provider: this.name, operation, status: 429 }, wait, {
        hint: `retry in ${Math.ceil(wait / 1000)} s`,
      });
    }
    this.#log.debug({ operation, waitMs: wait, rateLimitRemaining: budget?.remaining }, 'waiting for the DigitalOcean rate limit');
    await this.#sleep(wait);
  }

  #clientError(operation: string, status: number, said: string, details: CloudApiDetails): Error {
    switch (status) {
      case 401:
      case 403:
        return new CloudCredentialsError(`${operation}: DigitalOcean ${status === 401 ? 'rejected the API token' : 'refused the API token this operation'} (${said})`, details, {
          hint: 'check that the Secret named by credentialsSecretRef holds a valid token with droplet, ssh_key, tag and actions scopes',
        });
      case 404:
        return new CloudNotFoundError(`${operation}: not found at DigitalOcean (${said})`, details);
      case 409:
        return new CloudConflictError(`${operation}: DigitalOcean reports a conflict (${said})`, details);
      default:
        return new CloudRequestRejectedError(`${operation}: DigitalOcean rejected the request (${said})`, details);
    }
  }

  #recordRateLimit(headers: Headers): void {
    const limit = Number(headers.get('ratelimit-limit'));
    const remaining = Number(headers.get('ratelimit-remaining'));
    const reset = Number(headers.get('ratelimit-reset'));
    if (headers.has('ratelimit-limit') && Number.isFinite(limit) && Number.isFinite(remaining)) {
      this.#rateLimit = { limit, remaining, resetAt: Number.isFinite(reset) ? reset * 1000 : 0 };
    }
  }

  /** How long to wait after a 429: `retry-after` (seconds or HTTP date), else `ratelimit-reset`, else backoff. */
  #rateLimitWait(headers: Headers, step: number): number {
    const retryAfter = headers.get('retry-after');
    if (retryAfter !== null && retryAfter.trim() !== '') {
      const seconds = Number(retryAfter);
      if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
      const date = Date.parse(retryAfter);
      if (Number.isFinite(date)) return Math.max(0, date - this.#now());
    }
    const reset = Number(headers.get('ratelimit-reset'));
    if (headers.has('ratelimit-reset') && Number.isFinite(reset)) return Math.max(0, reset * 1000 - this.#now());
    return this.#backoff(step);
  }

  /** Full jitter: a random wait in [0, min(max, base·2^step)]. */
  #backoff(step: number): number {
    const ceiling = Math.min(this.#backoffMaxMs, this.#backoffBaseMs * 2 ** step);
    return Math.round(this.#random() * ceiling);
  }

  #scrub(text: string): string {
    const withoutToken = text.split(this.#token).join('***');
    const redacted = redactSecrets(withoutToken);
    return redacted.length > 300 ? `${redacted.slice(0, 297)}...` : redacted;
  }

  #malformed(operation: string, what: string): InternalError {
    return new InternalError(`${operation}: DigitalOcean answered without the expected ${what}`);
  }
}

// ---------------------------------------------------------------------------------------------
// DigitalOcean JSON → the provider-neutral model

interface DoDroplet {
  id: number;
  name: string;
  status: string;
  locked?: boolean;
  created_at?: string;
  region?: { slug?: string } | null;
  size_slug?: string;
  size?: { slug?: string } | null;
  image?: { id?: number; slug?: string | null } | null;
  networks?: { v4?: Array<{ ip_address?: string; type?: string }> } | null;
  tags?: string[] | null;
}

interface DoSshKey {
  id: number;
  name: string;
  fingerprint: string;
  public_key: string;
}

interface DoAction {
  id: number;
  type: string;
  status: string;
  resource_id?: number | null;
}

const HOST_STATUSES: ReadonlySet<string> = new Set<HostStatus>(['new', 'active', 'off', 'archive']);
const ACTION_STATUSES: ReadonlySet<string> = new Set<ActionStatus>(['in-progress', 'completed', 'errored']);

/** Maps a DigitalOcean droplet onto CloudHost. */
export function toCloudHost(d: DoDroplet): CloudHost {
  const publicV4 = d.networks?.v4?.find((n) => n.type === 'public' && typeof n.ip_address === 'string' && n.ip_address !== '');
  const image = d.image?.slug ?? (d.image?.id === undefined ? '' : String(d.image.id));
  return {
    id: String(d.id),
    name: d.name,
    status: HOST_STATUSES.has(d.status) ? (d.status as HostStatus) : 'unknown',
    publicIPv4: publicV4?.ip_address,
    region: d.region?.slug ?? '',
    size: d.size_slug ?? d.size?.slug ?? '',
    image,
    tags: [...(d.tags ?? [])].sort(),
    locked: d.locked === true,
    createdAt: d.created_at ?? '',
  };
}

function toSshKeyInfo(k: DoSshKey): SshKeyInfo {
  return { id: String(k.id), name: k.name, fingerprint: k.fingerprint, publicKey: k.public_key };
}

function toHostAction(a: DoAction): HostAction {
  return {
    id: String(a.id),
    type: a.type,
    status: ACTION_STATUSES.has(a.status) ? (a.status as ActionStatus) : 'in-progress',
    hostId: a.resource_id === undefined || a.resource_id === null ? '' : String(a.resource_id),
  };
}

function byNumericId(a: CloudHost, b: CloudHost): number {
  return Number(a.id) - Number(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function dropletId(id: string): string {
  if (!/^\d+$/.test(id)) throw new ValidationError(`"${id}" is not a DigitalOcean droplet id`);
  return id;
}

function withQuery(path: string, query: Readonly<Record<string, string>>): string {
  const params = new URLSearchParams(Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const qs = params.toString();
  return qs === '' ? path : `${path}?${qs}`;
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(`DigitalOcean base URL "${raw}" is not a URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
    throw new ValidationError(`DigitalOcean base URL "${url.origin}" must be an origin such as https://api.digitalocean.com`);
  }
  return new URL(url.origin);
}

async function readErrorBody(response: Response): Promise<DoErrorBody> {
  try {
    const text = await response.text();
    const parsed: unknown = text === '' ? {} : JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' ? (parsed as DoErrorBody) : {};
  } catch {
    return {};
  }
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : err.name;
  }
  return 'unknown error';
}
