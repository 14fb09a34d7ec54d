import { UsageError } from '../../core/errors.ts';
import type { ColumnIR } from '../../core/schema/ir.ts';
import { CallErrorCode } from './call.ts';

/**
 * Caller values → values for bound parameters, checked against the column's type in the release
 * IR. A wrong type is a 400 that names the column and the expected type, never the value. The
 * database still has the last word (a number out of range, a malformed timestamp): those errors
 * are mapped by SQLSTATE.
 */

export type SqlValue =
  | { readonly kind: 'plain'; readonly value: string | number | boolean }
  | { readonly kind: 'null' }
  | { readonly kind: 'json'; readonly value: unknown }
  | { readonly kind: 'bytes'; readonly value: Buffer };

export type ValueClass = 'text' | 'int' | 'bigint' | 'float' | 'decimal' | 'boolean' | 'json' | 'array' | 'timestamp' | 'bytes' | 'uuid' | 'other';

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const INT16 = { min: -(2 ** 15), max: 2 ** 15 - 1 };
const DECIMAL_TEXT = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
const BIGINT_TEXT = /^[-+]?\d{1,19}$/;
const TIMESTAMP_TEXT = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;
const UUID_TEXT = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** How the data plane treats a column's values, from its SQL type (and logical type for arrays). */
export function valueClassOf(column: Pick<ColumnIR, 'type' | 'logicalType'>): ValueClass {
  const t = column.type.toLowerCase();
  if (column.logicalType === 'array') return 'array';
  if (t === 'text' || t.startsWith('character') || t.startsWith('varchar') || t === 'citext' || t === 'name') return 'text';
  if (t === 'integer' || t === 'smallint') return 'int';
  if (t === 'bigint') return 'bigint';
  if (t === 'double precision' || t === 'real') return 'float';
  if (t.startsWith('numeric') || t.startsWith('decimal')) return 'decimal';
  if (t === 'boolean') return 'boolean';
  if (t === 'jsonb' || t === 'json') return 'json';
  if (t.startsWith('timestamp') || t === 'date') return 'timestamp';
  if (t === 'bytea') return 'bytes';
  if (t === 'uuid') return 'uuid';
  return 'other';
}

const expected: Readonly<Record<ValueClass, string>> = {
  text: 'a string',
  int: 'an integer',
  bigint: 'an integer (or a string of digits)',
  float: 'a number',
  decimal: 'a number or a decimal string',
  boolean: 'true or false',
  json: 'a JSON value',
  array: 'an array',
  timestamp: 'an ISO 8601 timestamp string',
  bytes: 'a base64 string',
  uuid: 'a UUID string',
  other: 'a string',
};

function wrongType(column: ColumnIR, cls: ValueClass, where: ValueUse): UsageError {
  return new UsageError(`${where}.${column.name} must be ${expected[cls]} (column type ${column.type})`, { reason: CallErrorCode.InvalidValue });
}

function scalarOk(cls: ValueClass, value: unknown): boolean {
  switch (cls) {
    case 'text':
    case 'other':
      return typeof value === 'string' && !value.includes('\u0000');
    case 'int': {
      const range = INT32;
      return typeof value === 'number' && Number.isInteger(value) && value >= range.min && value <= range.max;
    }
    case 'bigint':
      return (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'string' && BIGINT_TEXT.test(value));
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    case 'decimal':
      return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value.length <= 1000 && DECIMAL_TEXT.test(value));
    case 'boolean':
      return typeof value === 'boolean';
    case 'timestamp':
      return typeof value === 'string' && TIMESTAMP_TEXT.test(value) && !Number.isNaN(Date.parse(value.replace(' ', 'T')));
    case 'uuid':
      return typeof value === 'string' && UUID_TEXT.test(value);
    case 'bytes':
      return typeof value === 'string' && BASE64.test(value);
    case 'json':
    case 'array':
      return true;
  }
}

/** The element check of an `array` column's `items` type. */
function itemOk(items: string | undefined, value: unknown): boolean {
  switch (items) {
    case undefined:
    case 'json':
      return true;
    case 'string':
      return typeof value === 'string';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && value >= INT32.min && value <= INT32.max;
    case 'bigint':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'timestamp':
      return scalarOk('timestamp', value);
    default:
      return items.startsWith('decimal') ? scalarOk('decimal', value) : true;
  }
}

/** Where a value is used: `where` values are equalities, `after` values a keyset position, `data` values are written. */
export type ValueUse = 'where' | 'after' | 'data';

/** Checks and converts one value for `column` (`after` values are typed like `where` values, and never null). */
export function encodeValue(column: ColumnIR, value: unknown, where: ValueUse): SqlValue {
  const cls = valueClassOf(column);
  if (value === null) {
    if (where === 'data' && !column.nullable) throw new UsageError(`data.${column.name} cannot be null (the column is NOT NULL)`, { reason: CallErrorCode.InvalidValue });
    if (where === 'after') throw new UsageError(`after.${column.name} cannot be null: a keyset position is the last row's values`, { reason: CallErrorCode.InvalidValue });
    return { kind: 'null' };
  }
  if (where !== 'data' && (cls === 'json' || cls === 'array')) {
    throw new UsageError(`${where} cannot compare the JSON column ${column.name}`, { reason: CallErrorCode.InvalidValue });
  }
  if (cls === 'array') {
    if (!Array.isArray(value) || !value.every((v) => itemOk(column.items, v))) {
      throw new UsageError(`data.${column.name} must be an array${column.items ? ` of ${column.items}` : ''}`, { reason: CallErrorCode.InvalidValue });
    }
    return { kind: 'json', value };
  }
  if (cls === 'json') return { kind: 'json', value };
  if (!scalarOk(cls, value)) throw wrongType(column, cls, where);
  if (cls === 'int' && column.type.toLowerCase() === 'smallint' && ((value as number) < INT16.min || (value as number) > INT16.max)) throw wrongType(column, cls, where);
  if (cls === 'bytes') return { kind: 'bytes', value: Buffer.from(value as string, 'base64') };
  return { kind: 'plain', value: value as string | number | boolean };
}
