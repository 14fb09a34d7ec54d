/**
 * Logical column types of `schema/*.yaml` and the Postgres types they become. SQL type names are
 * spelled the way `format_type` prints them, so a declared column and an introspected one compare
 * as plain strings.
 */

export type ScalarType = 'string' | 'int' | 'bigint' | 'float' | 'decimal' | 'boolean' | 'json' | 'timestamp' | 'bytes';
export type LogicalType = ScalarType | 'array';

export const SCALAR_TYPES: readonly ScalarType[] = ['string', 'int', 'bigint', 'float', 'decimal', 'boolean', 'json', 'timestamp', 'bytes'];
export const LOGICAL_TYPES: readonly LogicalType[] = [...SCALAR_TYPES, 'array'];

const SQL_TYPES: Readonly<Record<Exclude<LogicalType, 'decimal'>, string>> = {
  string: 'text',
  int: 'integer',
  bigint: 'bigint',
  float: 'double precision',
  boolean: 'boolean',
  json: 'jsonb',
  timestamp: 'timestamp with time zone',
  bytes: 'bytea',
  // the item type is enforced by the data plane; Postgres sees a JSON array
  array: 'jsonb',
};

/** Postgres' limits on numeric precision. */
export const MAX_DECIMAL_PRECISION = 1000;

export interface TypeSpec {
  readonly type: LogicalType;
  /** decimal only */
  readonly precision: number | null;
  readonly scale: number | null;
}

const TYPE_PATTERN = /^(string|int|bigint|float|boolean|json|timestamp|bytes|array|decimal(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?)$/;

/** Parses `string`, `decimal`, `decimal(12)`, `decimal(12,2)` …; undefined when it is no type. */
export function parseTypeSpec(text: string): TypeSpec | undefined {
  const m = TYPE_PATTERN.exec(text);
  if (!m) return undefined;
  const base = text.startsWith('decimal') ? 'decimal' : (m[1] as LogicalType);
  if (base !== 'decimal') return { type: base, precision: null, scale: null };
  const precision = m[2] === undefined ? null : Number(m[2]);
  const scale = m[2] === undefined ? null : Number(m[3] ?? '0');
  return { type: 'decimal', precision, scale };
}

/** Text of a type spec as a user would write it (used as the IR's `logicalType`). */
export function formatTypeSpec(spec: TypeSpec): string {
  if (spec.type !== 'decimal' || spec.precision === null) return spec.type;
  return `decimal(${spec.precision},${spec.scale ?? 0})`;
}

export function sqlTypeOf(spec: TypeSpec): string {
  if (spec.type === 'decimal') return spec.precision === null ? 'numeric' : `numeric(${spec.precision},${spec.scale ?? 0})`;
  return SQL_TYPES[spec.type];
}

/** The SQL type of an id column under a generation policy. */
export function idSqlType(generate: string): string {
  return generate === 'auto_increment' ? 'bigint' : 'text';
}
