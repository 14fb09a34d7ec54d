import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type postgres from 'postgres';
import type { Logger } from 'pino';
import { ForbiddenError, InternalError, isSantokitError, MethodNotAllowedError, PayloadTooLargeError, UnauthorizedError, type SantokitError } from '../../core/errors.ts';
import { parseCallBody } from './call.ts';
import type { Serving } from './catalog.ts';
import { executePlan, type CallResult } from './execute.ts';
import type { AuthenticatedKey } from './keys.ts';
import type { BridgeMetrics } from './metrics.ts';
import { planCall } from './plan.ts';

/**
 * The data plane's HTTP surface: `POST /call`, `/healthz`, `/readyz`, `/metrics`.
 *
 * A call: read the body (bounded) → verify the API key (401) → check routing hints against the
 * key's binding (403) → parse → resolve the environment's current release → plan (404/403/400)
 * → run one parameterised statement. Every answer carries `X-Request-Id`; every error is
 * `{"error":{"code","message","requestId"}}`. Logs carry the request id, key id, table,
 * operation, status and duration — never the body, values, SQL or the key.
 */

export interface CallDependencies {
  authenticate(presented: string | undefined): Promise<AuthenticatedKey>;
  resolve(namespace: string, environment: string): Serving;
  /** the project an environment belongs to (its spec), if the environment exists */
  projectOf(namespace: string, environment: string): string | undefined;
  pool(serving: Serving, connection: string): Promise<postgres.Sql>;
  /** reasons the data plane is not ready; empty when ready */
  notReady(): string[];
  metrics: BridgeMetrics;
  log: Logger;
  /** largest accepted body */
  maxBodyBytes: number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Past this many bytes an oversized body is not drained any more: the connection is dropped. */
const DRAIN_LIMIT_FACTOR = 64;

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Reads the body. Past `limit` it answers 413 at once but keeps reading and discarding what the
 * client still sends (as nginx's lingering close does), so the client can read the answer instead
 * of meeting a reset; past `limit * DRAIN_LIMIT_FACTOR` (or a larger declared length) the
 * connection is dropped.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    const tooLarge = () => new PayloadTooLargeError(`the request body exceeds ${limit} bytes`, { hint: 'send smaller calls' });
    if (declared > limit * DRAIN_LIMIT_FACTOR) {
      req.resume();
      reject(Object.assign(tooLarge(), { closeConnection: true }));
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
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(Object.assign(tooLarge(), { closeConnection: true }));
    });
  });
}

function send(res: http.ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
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

/** The request handler of the data plane. */
export function createBridgeHandler(deps: CallDependencies): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { metrics, log } = deps;

  async function call(req: http.IncomingMessage, requestId: string, facts: Record<string, unknown>): Promise<CallResult> {
    const text = await readBody(req, deps.maxBodyBytes);
    const key = await deps.authenticate(header(req, 'x-santokit-api-key'));
    facts.keyId = key.keyId;
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
    const request = parseCallBody(text);
    facts.table = request.table;
    facts.op = request.op;
    const serving = deps.resolve(key.namespace, key.environment);
    facts.release = serving.release.id;
    const plan = planCall(serving.release, request, { sub: key.keyId, roles: key.roles });
    const sql = await deps.pool(serving, plan.table.connection);
    return executePlan(sql, plan);
  }

  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/call') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        req.resume();
      }
      if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else if (url === '/readyz') {
        const why = deps.notReady();
        res.writeHead(why.length === 0 ? 200 : 503, { 'content-type': 'text/plain' }).end(why.length === 0 ? 'ok' : why.join('\n'));
      } else if (url === '/metrics') {
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else {
        const requestId = randomUUID();
        send(res, 404, { error: { code: 'NotFound', message: 'no such route: the data plane serves POST /call', requestId } }, { 'x-request-id': requestId });
      }
      return;
    }

    const given = header(req, 'x-request-id');
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    const started = process.hrtime.bigint();
    const facts: Record<string, unknown> = {};
    const finish = (status: number, body: unknown, err?: { mapped: SantokitError; raw: unknown }, extra: Record<string, string> = {}) => {
      send(res, status, body, { 'x-request-id': requestId, ...extra });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const op = typeof facts.op === 'string' ? facts.op : 'none';
      metrics.requests.inc({ op, status: String(status) });
      metrics.duration.observe({ op }, seconds);
      if (status === 401) metrics.authFailures.inc({ reason: err?.mapped.reason ?? 'unknown' });
      const line = { requestId, status, ms: Math.round(seconds * 10_000) / 10, ...facts, ...(err ? { code: err.mapped.reason } : {}) };
      // Refusals at info (who was refused and why is operational signal); successes at debug:
      // an info line per call would cost more than the call itself at high rates.
      if (status >= 500) log.error({ ...line, ...loggable(err?.raw, err!.mapped) }, 'call failed');
      else if (status >= 400) log.info(line, 'call');
      else log.debug(line, 'call');
    };

    if (req.method !== 'POST') {
      req.resume();
      const err = new MethodNotAllowedError('use POST /call');
      finish(405, envelope(err, requestId), { mapped: err, raw: err }, { allow: 'POST' });
      return;
    }
    call(req, requestId, facts).then(
      (data) => finish(200, { data }),
      (raw: unknown) => {
        const mapped = isSantokitError(raw) ? raw : new InternalError('unexpected error', { cause: raw });
        const close = (raw as { closeConnection?: boolean } | null)?.closeConnection === true;
        finish(mapped.status, envelope(mapped, requestId), { mapped, raw }, close ? { connection: 'close' } : {});
      },
    );
  };
}
