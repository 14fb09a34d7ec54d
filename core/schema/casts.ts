import { quoteIdent } from './names.ts';

/**
 * The cast matrix: how a column's values are converted when its type changes, and what that does
 * to them. Decided from the two SQL types alone (pure), so the plan, its hazards and its SQL agree.
 *
 * - `exact`: every value converts and keeps its meaning (int → bigint, decimal(10,2) → decimal(12,2)).
 *   Not destructive; the table is still rewritten.
 * - `may_fail`: values convert exactly, but some may not convert at all (bigint → int overflow, text
 *   → int, invalid UTF-8 in bytes → string); the apply then fails and nothing changes. `correctness`.
 * - `reinterprets`: every value converts, exactly, into another kind of value (int → string, json →
 *   string, timestamp → ISO-8601 text): readers of the old type break. `correctness`.
 * - `changes_data`: values are rounded, truncated or collapsed (decimal scale narrowing, float → int,
 *   bigint → float beyond 2^53, int → boolean). `deletes_data`.
 * - `impossible`: Postgres has no conversion (timestamp ↔ bigint, bytes ↔ boolean …): the step is
 *   refused at plan time (`cannot_apply`), whatever force says.
 */

export type CastEffect = 'exact' | 'may_fail' | 'reinterprets' | 'changes_data' | 'impossible';

export interface Cast {
  readonly effect: CastEffect;
  /** the USING expression (absent when impossible) */
  readonly using: string | null;
  /** what happens to the values, for the hazard message */
  readonly note: string;
}

type Family = 'int' | 'bigint' | 'numeric' | 'float' | 'text' | 'boolean' | 'json' | 'timestamp' | 'bytes' | 'other';

interface Parsed {
  readonly family: Family;
  /** numeric(p,s): precision and scale; null for unconstrained numeric */
  readonly precision: number | null;
  readonly scale: number | null;
}

function parse(type: string): Parsed {
  const none = { precision: null, scale: null };
  switch (type) {
    case 'integer':
      return { family: 'int', ...none };
    case 'bigint':
      return { family: 'bigint', ...none };
    case 'double precision':
      return { family: 'float', ...none };
    case 'text':
      return { family: 'text', ...none };
    case 'boolean':
      return { family: 'boolean', ...none };
    case 'jsonb':
      return { family: 'json', ...none };
    case 'timestamp with time zone':
      return { family: 'timestamp', ...none };
    case 'bytea':
      return { family: 'bytes', ...none };
    case 'numeric':
      return { family: 'numeric', ...none };
  }
  const m = /^numeric\((\d+),(\d+)\)$/.exec(type);
  if (m) return { family: 'numeric', precision: Number(m[1]), scale: Number(m[2]) };
  return { family: 'other', ...none };
}

/** Digits before the decimal point a value of an integer type may need. */
const INTEGER_DIGITS: Partial<Record<Family, number>> = { int: 10, bigint: 19 };

const NUMBERS: ReadonlySet<Family> = new Set(['int', 'bigint', 'numeric', 'float']);

/** The conversion of a column `column` from SQL type `from` to `to` (both as format_type prints them). */
export function castOf(column: string, from: string, to: string): Cast {
  const c = quoteIdent(column);
  const a = parse(from);
  const b = parse(to);
  const plain = `${c}::${to}`;
  const cast = (effect: CastEffect, note: string, using = plain): Cast => ({ effect, using, note });
  const impossible = (): Cast => ({
    effect: 'impossible',
    using: null,
    note: `Postgres cannot convert ${from} to ${to}; add a new column, copy the data over in your own migration, then drop the old one`,
  });

  if (a.family === 'other' || b.family === 'other') return cast('may_fail', `converts with ${from}'s cast to ${to}; the apply fails on a value that does not convert`);

  if (NUMBERS.has(a.family) && NUMBERS.has(b.family)) return numberCast(a, b, from, to, cast);

  // to and from text
  if (b.family === 'text') {
    switch (a.family) {
      case 'bytes':
        return cast('may_fail', 'decodes the bytes as UTF-8 text; the apply fails on bytes that are not valid UTF-8', `pg_catalog.convert_from(${c}, 'UTF8')`);
      case 'timestamp':
        return cast('reinterprets', 'writes each instant as ISO-8601 text in UTC (2024-01-31T12:00:00.000000Z)', `pg_catalog.to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
      default:
        return cast('reinterprets', `writes each ${from} value as text`);
    }
  }
  if (a.family === 'text') {
    switch (b.family) {
      case 'bytes':
        return cast('reinterprets', 'stores the UTF-8 bytes of each text', `pg_catalog.convert_to(${c}, 'UTF8')`);
      case 'timestamp':
        return cast('may_fail', "parses each text as a timestamp (without a zone, in the server's TimeZone); the apply fails on one that is not");
      case 'numeric':
        if (b.precision !== null) return cast('changes_data', `parses each text as a number rounded to ${b.scale} decimal places; the apply fails on one that is not a number or too large`);
        return cast('may_fail', 'parses each text as a number; the apply fails on one that is not');
      case 'float':
        return cast('changes_data', 'parses each text as a double precision number, rounding long decimals; the apply fails on one that is not a number');
      default:
        return cast('may_fail', `parses each text as ${to}; the apply fails on one that is not`);
    }
  }

  // booleans
  if (a.family === 'boolean' && NUMBERS.has(b.family)) return cast('reinterprets', 'stores true as 1 and false as 0', `${c}::integer::${to}`);
  if (NUMBERS.has(a.family) && b.family === 'boolean') return cast('changes_data', 'stores 0 as false and every other number as true (the numbers are lost)', `(${c} <> 0)`);

  // JSON
  if (b.family === 'json') {
    if (a.family === 'bytes') return impossible();
    return cast('reinterprets', `stores each ${from} value as a JSON ${a.family === 'boolean' ? 'boolean' : a.family === 'timestamp' ? 'string' : 'number'}`, `pg_catalog.to_jsonb(${c})`);
  }
  if (a.family === 'json') {
    if (b.family === 'boolean') return cast('may_fail', 'reads each JSON boolean; the apply fails on any other JSON value');
    if (b.family === 'timestamp') return cast('may_fail', 'parses each JSON string as a timestamp; the apply fails on any other value', `(${c} #>> '{}')::${to}`);
    return impossible();
  }

  return impossible();
}

function numberCast(a: Parsed, b: Parsed, from: string, to: string, cast: (effect: CastEffect, note: string, using?: string) => Cast): Cast {
  // to float: exact for int, rounds beyond 15 significant digits otherwise
  if (b.family === 'float') {
    if (a.family === 'int') return cast('exact', `every ${from} value is a double precision number`);
    return cast('changes_data', `rounds values to double precision (about 15 significant digits${a.family === 'bigint' ? '; integers beyond 2^53 change' : ''})`);
  }
  if (a.family === 'float') {
    if (b.family === 'numeric' && b.precision === null) return cast('changes_data', 'rounds each value to its 15 significant decimal digits; the apply fails on NaN or infinity with older servers');
    return cast('changes_data', `rounds each value to ${b.family === 'numeric' ? `${b.scale} decimal places` : 'a whole number'}; the apply fails on one that does not fit`);
  }
  // integers and numerics
  const aScale = a.family === 'numeric' ? a.scale : 0; // null: any scale
  const aDigits = a.family === 'numeric' ? (a.precision === null ? null : (a.precision ?? 0) - (a.scale ?? 0)) : (INTEGER_DIGITS[a.family] ?? null);
  if (b.family === 'numeric' && b.precision === null) return cast('exact', `every ${from} value is a numeric`);
  const bScale = b.family === 'numeric' ? (b.scale ?? 0) : 0;
  const bDigits = b.family === 'numeric' ? (b.precision ?? 0) - bScale : (INTEGER_DIGITS[b.family] ?? 0);
  if (aScale === null || aScale > bScale) {
    return cast('changes_data', `rounds each value to ${bScale === 0 ? 'a whole number' : `${bScale} decimal place${bScale === 1 ? '' : 's'}`}; the apply fails on one that does not fit ${to}`);
  }
  if (aDigits === null || aDigits > bDigits) {
    // numeric(p,s) → int/bigint keeps every value of small enough precision; integer narrowing may overflow
    return cast('may_fail', `the apply fails on a value too large for ${to}`);
  }
  return cast('exact', `every ${from} value fits ${to}`);
}
