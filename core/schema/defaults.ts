import { canonicalJson } from './ir.ts';
import type { LogicalType } from './types.ts';

/**
 * Column defaults in one canonical text form, so a declared default and the one Postgres reports
 * (`pg_get_expr`, which prints `5`, `'-5'::integer`, `1.5::numeric(12,2)`, `'{"a": 1}'::jsonb` …)
 * compare as strings. The canonical form is also valid SQL for `DEFAULT …`:
 *   `now()` | `true` | `false` | `'<normalised literal>'::<sql type>`
 * Anything else found in the catalog (a function call, an operator) is kept verbatim: it never
 * equals a declared default, so the diff and the drift check see it.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const INT4 = [-(2n ** 31n), 2n ** 31n - 1n] as const;
const INT8 = [-(2n ** 63n), 2n ** 63n - 1n] as const;

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function baseType(sqlType: string): string {
  const paren = sqlType.indexOf('(');
  return paren < 0 ? sqlType : sqlType.slice(0, paren);
}

function normaliseInteger(text: string, range: readonly [bigint, bigint]): string | undefined {
  if (!/^[+-]?\d+$/.test(text.trim())) return undefined;
  const n = BigInt(text.trim());
  return n < range[0] || n > range[1] ? undefined : n.toString();
}

function normaliseDecimal(text: string): string | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const int = (m[2] ?? '').replace(/^0+/, '') || '0';
  const frac = (m[3] ?? '').replace(/0+$/, '');
  const body = frac === '' ? int : `${int}.${frac}`;
  return m[1] === '-' && body !== '0' ? `-${body}` : body;
}

function normaliseFloat(text: string): string | undefined {
  const t = text.trim();
  if (t === 'NaN' || t === 'Infinity' || t === '-Infinity') return t;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? String(n) : undefined;
}

function normaliseBoolean(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  if (['t', 'true', 'y', 'yes', 'on', '1'].includes(t)) return 'true';
  if (['f', 'false', 'n', 'no', 'off', '0'].includes(t)) return 'false';
  return undefined;
}

function normaliseJson(text: string): string | undefined {
  try {
    return canonicalJson(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Normalises literal text for a column of the given SQL type; undefined when it is not valid for it. */
function normaliseLiteral(sqlType: string, text: string): string | undefined {
  switch (baseType(sqlType)) {
    case 'integer':
      return normaliseInteger(text, INT4);
    case 'bigint':
      return normaliseInteger(text, INT8);
    case 'numeric':
      return normaliseDecimal(text);
    case 'double precision':
      return normaliseFloat(text);
    case 'boolean':
      return normaliseBoolean(text);
    case 'jsonb':
      return normaliseJson(text);
    default:
      return text;
  }
}

function render(sqlType: string, normalised: string): string {
  if (baseType(sqlType) === 'boolean') return normalised;
  return `${quoteLiteral(normalised)}::${sqlType}`;
}

export type DefaultResult = { readonly sql: string } | { readonly error: string };

/** The canonical default for a declared YAML value, or why the value does not fit the column. */
export function declaredDefault(logical: LogicalType, sqlType: string, value: JsonValue, items?: LogicalType): DefaultResult {
  const got = Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
  const column = `${/^[aeiou]/.test(logical) ? 'an' : 'a'} ${logical} column`;
  const fail = (expected: string): DefaultResult => ({ error: `default must be ${expected} for ${column} (got ${got})` });
  switch (logical) {
    case 'timestamp':
      return value === 'now' ? { sql: 'now()' } : fail('"now"');
    case 'bytes':
      return { error: 'bytes columns cannot have a default' };
    case 'string':
      return typeof value === 'string' ? { sql: render(sqlType, value) } : fail('a string');
    case 'boolean':
      return typeof value === 'boolean' ? { sql: render(sqlType, String(value)) } : fail('true or false');
    case 'json':
      return { sql: render(sqlType, canonicalJson(value)) };
    case 'array': {
      if (!Array.isArray(value)) return fail('a list');
      const bad = items === undefined ? undefined : value.find((v) => !itemFits(items, v));
      if (bad !== undefined) return { error: `default list item ${JSON.stringify(bad)} is not ${/^[aeiou]/.test(items ?? '') ? 'an' : 'a'} ${items}` };
      return { sql: render(sqlType, canonicalJson(value)) };
    }
    case 'int':
    case 'bigint':
    case 'float':
    case 'decimal': {
      const whole = logical === 'int' || logical === 'bigint';
      const expected = whole ? 'a whole number' : 'a number';
      const text = typeof value === 'number' || typeof value === 'string' ? String(value).trim() : undefined;
      if (text === undefined || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return fail(expected);
      if (whole && !/^[+-]?\d+$/.test(text) && !/e/i.test(text)) return fail(expected);
      if (typeof value === 'number' && /e/i.test(text) && logical !== 'float') {
        return { error: `default ${text} is written with an exponent; write it out as a quoted decimal string` };
      }
      if (typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value) && logical !== 'float') {
        // YAML numbers are doubles: beyond 2^53 the value read is not the value written
        return { error: `default ${text} is beyond 2^53, where an unquoted number is rounded when the file is read; write it as a quoted string ("…")` };
      }
      const normalised = normaliseLiteral(sqlType, text);
      if (normalised === undefined) return fail(whole ? `${expected} in the ${logical === 'int' ? '32' : '64'}-bit range` : expected);
      return { sql: render(sqlType, normalised) };
    }
  }
}

function itemFits(items: LogicalType, v: JsonValue): boolean {
  switch (items) {
    case 'string':
    case 'timestamp':
    case 'bytes':
      return typeof v === 'string';
    case 'int':
    case 'bigint':
      return typeof v === 'number' && Number.isInteger(v);
    case 'float':
    case 'decimal':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

const CAST_TAIL = /^(?:::(?:"[^"]+"|[a-z_][a-z0-9_ ]*)(?:\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])*)*$/i;

function stripParens(text: string): string {
  let t = text.trim();
  while (t.startsWith('(') && t.endsWith(')')) {
    let depth = 0;
    let wraps = true;
    for (let i = 0; i < t.length; i++) {
      if (t[i] === '(') depth++;
      else if (t[i] === ')') depth--;
      if (depth === 0 && i < t.length - 1) {
        wraps = false;
        break;
      }
    }
    if (!wraps) break;
    t = t.slice(1, -1).trim();
  }
  return t;
}

/** The canonical form of a default as the catalog reports it (`pg_get_expr(adbin, adrelid)`). */
export function catalogDefault(sqlType: string, expression: string): string {
  const expr = stripParens(expression);
  if (/^now\(\)$/i.test(expr) || /^current_timestamp$/i.test(expr)) return 'now()';
  let literal: string | undefined;
  let rest = '';
  const quoted = /^'((?:[^']|'')*)'/.exec(expr);
  if (quoted) {
    literal = (quoted[1] ?? '').replaceAll("''", "'");
    rest = expr.slice(quoted[0].length);
  } else {
    const bare = /^(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|true|false)/i.exec(expr);
    if (bare) {
      literal = bare[1] ?? '';
      rest = expr.slice(bare[0].length);
    }
  }
  if (literal === undefined || !CAST_TAIL.test(rest.trim())) return expression;
  const normalised = normaliseLiteral(sqlType, literal);
  return normalised === undefined ? expression : render(sqlType, normalised);
}
