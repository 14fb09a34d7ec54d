import { UsageError } from '../../core/errors.ts';
import { OPERATIONS, type Operation } from '../../core/permissions/policy.ts';

/**
 * The body of `POST /call`, parsed and checked for shape before anything looks at a schema:
 * `{ "path": "db/<table>/<op>", "params": {...} }`. Everything unexpected is a 400; nothing the
 * caller sent is echoed unless it is a plain identifier (messages never carry values).
 */

export type Direction = 'asc' | 'desc';

export interface CallParams {
  /** column equalities, ANDed; entries keep the caller's order (no prototype games with plain objects) */
  readonly where?: ReadonlyArray<readonly [string, unknown]>;
  readonly select?: readonly string[];
  readonly orderBy?: ReadonlyArray<readonly [string, Direction]>;
  readonly limit?: number;
  readonly offset?: number;
  /** keyset paging: the position (values of the orderBy columns, or of the id) to continue strictly after */
  readonly after?: ReadonlyArray<readonly [string, unknown]>;
  readonly data?: ReadonlyArray<readonly [string, unknown]>;
}

export interface CallRequest {
  readonly table: string;
  readonly op: Operation;
  readonly params: CallParams;
}

/** Error codes of malformed requests (the `code` of the error envelope). */
export const CallErrorCode = {
  InvalidJson: 'InvalidJson',
  InvalidRequest: 'InvalidRequest',
  InvalidPath: 'InvalidPath',
  InvalidParams: 'InvalidParams',
  UnknownColumn: 'UnknownColumn',
  InvalidValue: 'InvalidValue',
  MissingWhere: 'MissingWhere',
  IdGenerated: 'IdGenerated',
  IdRequired: 'IdRequired',
  UnsupportedCondition: 'UnsupportedCondition',
} as const;

/** Upper bound of `limit`, and the limit of a select that gives none. */
export const MAX_LIMIT = 1000;
/**
 * Upper bound of `offset`: the database reads and throws away `offset` rows per call, so an
 * unbounded offset lets one caller make every call a scan. Past it, narrow with `where`.
 */
export const MAX_OFFSET = 10_000;

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const PATH = /^db\/([a-z_][a-z0-9_]{0,62})\/([a-z]+)$/;
const ALLOWED_PARAMS: Readonly<Record<Operation, readonly string[]>> = {
  select: ['where', 'select', 'orderBy', 'limit', 'offset', 'after'],
  insert: ['data'],
  update: ['where', 'data'],
  delete: ['where'],
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deepest nesting of arrays and objects a value may have (JSON columns); deeper is a 400. */
export const MAX_VALUE_DEPTH = 32;

/** True when a value nests arrays/objects deeper than `max` (iterative: no recursion to exhaust). */
function tooDeep(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    for (const child of Object.values(v as object)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

function checkDepth(entries: ReadonlyArray<readonly [string, unknown]>, what: string): void {
  for (const [column, value] of entries) {
    if (tooDeep(value, MAX_VALUE_DEPTH)) throw invalid(CallErrorCode.InvalidValue, `${what}.${IDENTIFIER.test(column) ? column : '(a column)'} nests arrays or objects deeper than ${MAX_VALUE_DEPTH} levels`);
  }
}

/** A caller-supplied name as it may appear in a message: itself if it is an identifier. */
export function shownName(name: string): string {
  return IDENTIFIER.test(name) ? `"${name}"` : '(a name that is not a valid identifier)';
}

function invalid(code: string, message: string, hint?: string): UsageError {
  return new UsageError(message, hint === undefined ? { reason: code } : { reason: code, hint });
}

/** Parses the raw request body (a string) into a CallRequest; throws a 400 UsageError. */
export function parseCallBody(text: string): CallRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalid(CallErrorCode.InvalidJson, 'the request body is not valid JSON', 'send {"path": "db/<table>/<op>", "params": {...}}');
  }
  return parseCall(body);
}

/** Checks the shape of a parsed body. */
export function parseCall(body: unknown): CallRequest {
  if (!isPlainObject(body)) throw invalid(CallErrorCode.InvalidRequest, 'the request body must be a JSON object', 'send {"path": "db/<table>/<op>", "params": {...}}');
  for (const key of Object.keys(body)) {
    if (key !== 'path' && key !== 'params') throw invalid(CallErrorCode.InvalidRequest, `unknown field ${shownName(key)} in the request body: only path and params`);
  }
  if (typeof body.path !== 'string') throw invalid(CallErrorCode.InvalidPath, 'path must be a string like "db/<table>/<op>"');
  const m = PATH.exec(body.path);
  if (!m) throw invalid(CallErrorCode.InvalidPath, 'path must look like "db/<table>/<op>" with a lower-case table name');
  const table = m[1]!;
  const op = m[2]! as Operation;
  if (!OPERATIONS.includes(op)) throw invalid(CallErrorCode.InvalidPath, `unknown operation ${shownName(op)}: use select, insert, update or delete`);

  const raw = body.params ?? {};
  if (!isPlainObject(raw)) throw invalid(CallErrorCode.InvalidParams, 'params must be a JSON object');
  const allowed = ALLOWED_PARAMS[op];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw invalid(CallErrorCode.InvalidParams, `${op} does not take ${shownName(key)}: it takes ${allowed.join(', ')}`);
  }

  const params: {
    where?: Array<readonly [string, unknown]>;
    select?: string[];
    orderBy?: Array<readonly [string, Direction]>;
    limit?: number;
    offset?: number;
    after?: Array<readonly [string, unknown]>;
    data?: Array<readonly [string, unknown]>;
  } = {};
  if (raw.where !== undefined) {
    if (!isPlainObject(raw.where)) throw invalid(CallErrorCode.InvalidParams, 'where must be an object of column equalities');
    params.where = Object.entries(raw.where);
    checkDepth(params.where, 'where');
  }
  if (raw.data !== undefined) {
    if (!isPlainObject(raw.data)) throw invalid(CallErrorCode.InvalidParams, 'data must be an object of column values');
    params.data = Object.entries(raw.data);
    checkDepth(params.data, 'data');
  }
  if (raw.after !== undefined) {
    if (!isPlainObject(raw.after) || Object.keys(raw.after).length === 0) {
      throw invalid(CallErrorCode.InvalidParams, 'after must be a non-empty object of the orderBy columns\' values, like {"id": "<last id>"}', 'copy the orderBy columns of the last row of the previous page');
    }
    params.after = Object.entries(raw.after);
    checkDepth(params.after, 'after');
  }
  if (raw.select !== undefined) {
    if (!Array.isArray(raw.select) || raw.select.length === 0 || !raw.select.every((c) => typeof c === 'string')) throw invalid(CallErrorCode.InvalidParams, 'select must be a non-empty list of column names');
    params.select = [...new Set(raw.select as string[])];
  }
  if (raw.orderBy !== undefined) {
    if (!isPlainObject(raw.orderBy)) throw invalid(CallErrorCode.InvalidParams, 'orderBy must be an object like {"created_at": "desc"}');
    params.orderBy = Object.entries(raw.orderBy).map(([column, dir]) => {
      if (dir !== 'asc' && dir !== 'desc') throw invalid(CallErrorCode.InvalidParams, `orderBy ${shownName(column)} must be "asc" or "desc"`);
      return [column, dir] as const;
    });
  }
  for (const key of ['limit', 'offset'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(CallErrorCode.InvalidParams, `${key} must be a non-negative integer`);
    if (key === 'limit' && v > MAX_LIMIT) throw invalid(CallErrorCode.InvalidParams, `limit must be at most ${MAX_LIMIT}`, 'page with limit and after (the last row\'s orderBy values)');
    if (key === 'offset' && v > MAX_OFFSET) throw invalid(CallErrorCode.InvalidParams, `offset must be at most ${MAX_OFFSET}`, 'page with after (the last row\'s orderBy values) instead of offset, or narrow the rows with where');
    params[key] = v;
  }

  if ((op === 'update' || op === 'delete') && (params.where === undefined || params.where.length === 0)) {
    throw invalid(CallErrorCode.MissingWhere, `${op} needs a non-empty where`, `name the rows, e.g. {"where": {"id": "…"}}`);
  }
  if (op === 'update' && (params.data === undefined || params.data.length === 0)) throw invalid(CallErrorCode.InvalidParams, 'update needs a non-empty data object');
  if (op === 'insert' && params.data === undefined) throw invalid(CallErrorCode.InvalidParams, 'insert needs a data object');
  return { table, op, params };
}
