import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type postgres from 'postgres';
import type { Logger } from 'pino';
import { ForbiddenError, InternalError, isSantokitError, MethodNotAllowedError, PayloadTooLargeError, UnauthorizedError, UsageError, type SantokitError } from '../../core/errors.ts';
import { parseCallBody } from './call.ts';
import type { Serving } from './catalog.ts';
import { executePlan } from './execute.ts';
import type { AuthenticatedKey } from './keys.ts';
import { overloaded, rateLimited, retryAfterOf, TokenBuckets, type BridgeLimits } from './limits.ts';
import type { BridgeMetrics } from './metrics.ts';
import { planCall } from './plan.ts';

/**
 * The data plane's HTTP surfaces. The public one answers `POST /call` (and `/healthz`); the probe
 * one answers `/healthz`, `/readyz` and `/metrics`, which name every tenant's environments,
 * releases and connections and so are never on the public port.
 *
 * A call: in-flight bound (503) → verify the API key from the header, before any of the body is
 * read (401; 503 when verifications are queued past their bound) → the key's rate (429) →
 * routing hints against the key's binding (403) → read the body (bounded in size and time: 413,
 * 400) → parse → resolve the environment's current release → plan (404/403/400) → run one
 * parameterised statement → answer, capped in size. 429 and 503 carry `Retry-After`. Every
 * answer carries `X-Request-Id`; every error is `{"error":{"code","message","requestId"}}`. Logs
 * carry the request id, key id, table, operation, status and duration — never the body, values,
 * SQL or the key.
 */

export interface CallDependencies {
  /** a key verified moments ago may be answered synchronously (no promise on the hot path) */
  authenticate(presented: string | undefined): AuthenticatedKey | Promise<AuthenticatedKey>;
  resolve(namespace: string, environment: string): Serving;
  /** the project an environment belongs to (its spec), if the environment exists */
  projectOf(namespace: string, environment: string): string | undefined;
  pool(serving: Serving, connection: string): Promise<postgres.Sql>;
  metrics: BridgeMetrics;
  log: Logger;
  limits: BridgeLimits;
}

export interface ProbeDependencies {
  /** reasons the data plane is not ready; empty when ready */
  notReady(): string[];
  metrics: BridgeMetrics;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Past this many bytes an oversized body is not drained any more: the connection is dropped. */
const DRAIN_LIMIT_FACTOR = 64;

type Failure = SantokitError & { closeConnection?: boolean };

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Reads the body within `limit` bytes and `timeoutMs`. Past `limit` it answers 413 at once but
 * keeps reading and discarding what the client still sends (as nginx's lingering close does), so
 * the client can read the answer instead of meeting a reset; past `limit * DRAIN_LIMIT_FACTOR`
 * (or a larger declared length), or when the body is too slow, the connection is dropped after
 * the answer.
 */
function readBody(req: http.IncomingMessage, limit: number, deadlines: Deadlines): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    const tooLarge = () => new PayloadTooLargeError(`the request body exceeds ${limit} bytes`, { hint: 'send smaller calls' });
    const fail = (err: Failure) => {
      deadlines.delete(entry);
      reject(err);
    };
    const entry = deadlines.add(() => {
      fail(Object.assign(new UsageError(`the request body did not arrive within ${Math.round(deadlines.timeoutMs / 1000)} s`, { reason: 'BodyTimeout', hint: 'send the whole body at once' }), { closeConnection: true }));
    });
    if (declared > limit * DRAIN_LIMIT_FACTOR) {
      fail(Object.assign(tooLarge(), { closeConnection: true }));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit * DRAIN_LIMIT_FACTOR) {
        req.destroy();
      } else if (over) {
        // discarding
      } else if (size > limit) {
        over = true;
        chunks.length = 0;
        fail(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      deadlines.delete(entry);
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => fail(Object.assign(new UsageError('the request body could not be read', { reason: 'BodyUnreadable', cause: err }), { closeConnection: true })));
    req.on('close', () => {
      if (!req.complete) fail(Object.assign(tooLarge(), { closeConnection: true }));
    });
  });
}

/**
 * Body deadlines without a timer per call: entries carry their expiry and one interval (a
 * quarter of the timeout, at most a second) fails the expired ones.
 */
class Deadlines {
  private readonly entries = new Set<{ at: number; expire: () => void }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {}

  add(expire: () => void): { at: number; expire: () => void } {
    const entry = { at: performance.now() + this.timeoutMs, expire };
    this.entries.add(entry);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), Math.min(1000, Math.max(10, this.timeoutMs / 4)));
      this.timer.unref();
    }
    return entry;
  }

  delete(entry: { at: number; expire: () => void }): void {
    this.entries.delete(entry);
  }

  private sweep(): void {
    const now = performance.now();
    for (const e of this.entries) if (e.at <= now) e.expire();
    if (this.entries.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** A JSON answer with its request id (headers as a flat list: no header object per call). */
function send(res: http.ServerResponse, status: number, text: string, requestId: string, extraHeaders?: Record<string, string | number>): void {
  if (res.headersSent) return;
  const headers = ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(text)), 'x-request-id', requestId];
  if (extraHeaders !== undefined) for (const name in extraHeaders) headers.push(name, String(extraHeaders[name]));
  res.writeHead(status, headers);
  res.end(text);
}

/** The probe surface (a port of its own, never exposed): `/healthz`, `/readyz`, `/metrics`. */
export function createProbeHandler(deps: ProbeDependencies): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') req.resume();
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else if (url === '/readyz') {
      const why = deps.notReady();
      res.writeHead(why.length === 0 ? 200 : 503, { 'content-type': 'text/plain' }).end(why.length === 0 ? 'ok' : why.join('\n'));
    } else if (url === '/metrics') {
      deps.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  };
}

/** The error envelope; 5xx answers never carry an unexpected error's own text. */
function envelope(err: SantokitError, requestId: string): { error: { code: string; message: string; requestId: string; hint?: string } } {
  const message = err.status >= 500 && err instanceof InternalError && err.reason === 'InternalError' ? `internal error (request ${requestId})` : err.message;
  return { error: { code: err.reason, message, requestId, ...(err.hint ? { hint: err.hint } : {}) } };
}

/** What is safe to log of any error: its class, reason and status, never a driver's message. */
function loggable(err: unknown, mapped: SantokitError): Record<string, unknown> {
  if (isSantokitError(err)) return { err: mapped };
  const e = err as { name?: string; code?: string; stack?: string } | null;
  return { errType: e?.name ?? typeof err, errCode: e?.code, stack: e?.stack?.split('\n').slice(1, 8).join('\n') };
}

/** The public request handler of the data plane: `POST /call` and `/healthz`. */
export function createBridgeHandler(deps: CallDependencies): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { metrics, log, limits } = deps;
  const buckets = new TokenBuckets(limits.keyRatePerSecond, limits.keyBurst);
  const deadlines = new Deadlines(limits.bodyTimeoutMs);
  let inFlight = 0;
  const leaveFlight = () => inFlight--;
  /** pools whose promise has resolved (the catalog hands out the same promise per pool): no await per call */
  const openPools = new WeakMap<Promise<postgres.Sql>, postgres.Sql>();
  /** the rate bucket's name per key (the authenticator hands out one object per verified key): one string, hashed once */
  const rateKeys = new WeakMap<AuthenticatedKey, string>();
  const debug = log.isLevelEnabled('debug');

  async function call(req: http.IncomingMessage, facts: Record<string, unknown>, state: { bodyRead: boolean }): Promise<string> {
    const authenticated = deps.authenticate(header(req, 'x-santokit-api-key'));
    const key = authenticated instanceof Promise ? await authenticated : authenticated;
    facts.keyId = key.keyId;
    let rateKey = rateKeys.get(key);
    if (rateKey === undefined) rateKeys.set(key, (rateKey = `${key.namespace}/${key.keyId}`));
    const wait = buckets.take(rateKey);
    if (wait > 0) throw rateLimited(wait);
    const projectHint = header(req, 'x-santokit-project');
    const envHint = header(req, 'x-santokit-env');
    if ((projectHint !== undefined && projectHint !== key.project) || (envHint !== undefined && envHint !== key.environment)) {
      throw new ForbiddenError('the routing hints (X-Santokit-Project / X-Santokit-Env) contradict the API key, which is bound to another project or environment', { reason: 'HintMismatch' });
    }
    // A key Secret only binds to an environment of its own project.
    const owner = deps.projectOf(key.namespace, key.environment);
    if (owner !== undefined && owner !== key.project) {
      throw new UnauthorizedError('the API key is not valid (unknown, revoked or malformed)', { reason: 'InvalidApiKey' });
    }
    state.bodyRead = true;
    const text = await readBody(req, limits.maxBodyBytes, deadlines);
    const request = parseCallBody(text);
    facts.table = request.table;
    facts.op = request.op;
    const serving = deps.resolve(key.namespace, key.environment);
    facts.release = serving.release.id;
    const plan = planCall(serving.release, request, { sub: key.keyId, roles: key.roles });
    const pool = deps.pool(serving, plan.table.connection);
    let sql = openPools.get(pool);
    if (sql === undefined) {
      sql = await pool;
      openPools.set(pool, sql);
    }
    return executePlan(sql, plan, limits.maxResponseBytes);
  }

  return (req, res) => {
    const raw = req.url ?? '/';
    const query = raw.indexOf('?');
    const url = query === -1 ? raw : raw.slice(0, query);
    if (url !== '/call') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        req.resume();
      }
      if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else {
        const requestId = randomUUID();
        send(res, 404, JSON.stringify({ error: { code: 'NotFound', message: 'no such route: the data plane serves POST /call', requestId } }), requestId);
      }
      return;
    }

    const given = header(req, 'x-request-id');
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    const started = performance.now();
    const facts: Record<string, unknown> = {};
    const state = { bodyRead: false };
    const finish = (status: number, text: string, err?: { mapped: SantokitError; raw: unknown }, extra?: Record<string, string | number>) => {
      send(res, status, text, requestId, extra);
      const seconds = (performance.now() - started) / 1000;
      const op = typeof facts.op === 'string' ? facts.op : 'none';
      metrics.recordCall(op, status, seconds);
      if (status === 401) metrics.authFailures.inc({ reason: err?.mapped.reason ?? 'unknown' });
      // Refusals at info (who was refused and why is operational signal); successes at debug:
      // an info line per call would cost more than the call itself at high rates.
      if (status < 400 && !debug) return;
      const line = { requestId, status, ms: Math.round(seconds * 10_000) / 10, ...facts, ...(err ? { code: err.mapped.reason } : {}) };
      // A bound reached (503 with Retry-After) is load, not a failure: one short line, no stack.
      if (status >= 500 && retryAfterOf(err?.raw) !== undefined) log.warn(line, 'call refused: at a bound');
      else if (status >= 500) log.error({ ...line, ...loggable(err?.raw, err!.mapped) }, 'call failed');
      else if (status >= 400) log.info(line, 'call');
      else log.debug(line, 'call');
    };
    const fail = (raw: unknown) => {
      const mapped = isSantokitError(raw) ? raw : new InternalError('unexpected error', { cause: raw });
      const extra: Record<string, string | number> = {};
      const retryAfter = retryAfterOf(raw);
      if (retryAfter !== undefined) extra['retry-after'] = retryAfter;
      // A body not read yet (refused before it) is drained when its declared length is within
      // bounds; otherwise the connection closes after the answer instead of reading it.
      const declared = Number(req.headers['content-length'] ?? 'NaN');
      const unread = !state.bodyRead && !req.complete && !(Number.isFinite(declared) && declared <= limits.maxBodyBytes);
      if ((raw as Failure | null)?.closeConnection === true || unread) extra.connection = 'close';
      if (mapped instanceof MethodNotAllowedError) extra.allow = 'POST';
      let text: string;
      try {
        text = JSON.stringify(envelope(mapped, requestId));
      } catch {
        text = JSON.stringify({ error: { code: 'InternalError', message: `internal error (request ${requestId})`, requestId } });
      }
      finish(mapped.status, text, { mapped, raw }, extra);
    };

    if (req.method !== 'POST') {
      fail(new MethodNotAllowedError('use POST /call'));
      return;
    }
    if (inFlight >= limits.maxInFlight) {
      fail(overloaded(`${limits.maxInFlight} calls in flight`));
      return;
    }
    inFlight++;
    res.on('close', leaveFlight);
    call(req, facts, state).then((data) => finish(200, `{"data":${data}}`), fail);
  };
}
