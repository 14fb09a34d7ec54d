import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { ValidationError, type FieldError } from '../errors.ts';
import schemaFileSchema from '../../schema/schema.schema.json' with { type: 'json' };
import { checkSchema } from './check.ts';
import type { ParsedSchema, RawSchemaFile } from './declaration.ts';
import { compareFieldErrors, fieldError, firstDuplicateKey, readSource, type Segment, type SourceDoc } from './source.ts';

/**
 * First stage of the pipeline: YAML text → a validated declaration. Every problem of every file is
 * reported together, each with file, line and column; one problem gives one error (a YAML syntax
 * error is reported once, not with the errors it causes further down).
 */

export interface SchemaSourceFile {
  readonly path: string;
  readonly text: string;
}

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
const validateFile = ajv.compile<RawSchemaFile>(schemaFileSchema);

/** Guards against alias bombs: a small file must not expand into gigabytes. */
const MAX_ALIAS_COUNT = 100;

/** Parses and validates `schema/*.yaml` files; throws one ValidationError listing every problem. */
export function parseSchemaFiles(files: readonly SchemaSourceFile[]): ParsedSchema {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const errors: FieldError[] = [];
  const valid: { source: SourceDoc; data: RawSchemaFile }[] = [];
  for (const file of sorted) {
    const result = readFile(file);
    if ('errors' in result) errors.push(...result.errors);
    else valid.push(result);
  }
  // Cross-file checks only make sense once every file has the right shape.
  if (errors.length === 0) {
    const checked = checkSchema(valid);
    if ('errors' in checked) errors.push(...checked.errors);
    else return checked.schema;
  }
  errors.sort(compareFieldErrors);
  throw new ValidationError(`schema is not valid: ${errors.length} problem${errors.length === 1 ? '' : 's'}`, errors, {
    hint: 'fix the files named above; schema/schema.schema.json describes the format',
  });
}

function readFile(file: SchemaSourceFile): { source: SourceDoc; data: RawSchemaFile } | { errors: FieldError[] } {
  const source = readSource(file.path, file.text);
  const problem = source.doc.errors[0] ?? source.doc.warnings[0];
  if (problem) {
    const offset = problem.pos[0];
    const { line, col } = source.lines.linePos(offset);
    return { errors: [{ path: file.path, line: Math.max(line, 1), column: Math.max(col, 1), message: yamlMessage(problem.code, problem.message) }] };
  }
  const duplicate = firstDuplicateKey(source);
  if (duplicate) {
    return { errors: [{ path: file.path, ...duplicate.position, message: `duplicate key "${duplicate.key}": keys of a mapping must be unique` }] };
  }
  let data: unknown;
  try {
    data = source.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    const message = err instanceof ReferenceError ? 'too many aliases: the file expands beyond what a schema file needs' : 'the file could not be read as data';
    return { errors: [fieldError(source, [], message)] };
  }
  if (data === null || data === undefined) {
    return { errors: [{ path: file.path, line: 1, column: 1, message: 'the file is empty; expected a mapping with "version: 1" and "tables"' }] };
  }
  if (validateFile(data)) return { source, data };
  return { errors: schemaErrors(source, validateFile.errors ?? []) };
}

function yamlMessage(code: string, message: string): string {
  const first = message.split('\n')[0] ?? message;
  const text = first.replace(/ at line \d+, column \d+:?$/, '');
  switch (code) {
    case 'TAG_RESOLVE_FAILED':
      return `unsupported YAML tag: ${text}`;
    default:
      return `YAML syntax error: ${text}`;
  }
}

/** Edit distance of at most 2 (and not the same word): worth a "did you mean". */
function closeEnough(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 2) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return (prev[b.length] ?? 3) <= 2;
}

function isSplitDecimal(value: unknown): boolean {
  return typeof value === 'string' && /^decimal\(\s*\d+\s*$/.test(value);
}

function pointerSegments(pointer: string): Segment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    // identifiers never start with a digit, so a numeric segment is a list index
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const NAME_RULE = 'use lowercase letters, digits and _, start with a letter or _, at most 63 characters';
const TYPE_LIST = 'string, int, bigint, float, decimal, decimal(p,s), boolean, json, timestamp, bytes, array';

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function typeName(type: unknown): string {
  const names: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', boolean: 'true or false', number: 'a number', integer: 'a whole number', null: 'null' };
  const list = Array.isArray(type) ? type : [type];
  return list.map((t) => names[String(t)] ?? String(t)).join(' or ');
}

/** ajv errors → one located, plain-language error per problem. */
function schemaErrors(source: SourceDoc, raw: readonly ErrorObject[]): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  // `{ type: decimal(12,2) }` in flow style splits at the comma into `decimal(12` and a key `2)`:
  // one mistake, reported once (on the type, with the fix).
  const splitDecimals = new Set(raw.filter((e) => e.keyword === 'pattern' && isSplitDecimal(e.data)).map((e) => e.instancePath.replace(/\/type$/, '')));
  // A misspelt required key (`tabels:`) is one mistake: report the unknown key with a suggestion,
  // not also the missing one.
  const misspelt = new Set<string>();
  for (const e of raw) {
    if (e.keyword !== 'required') continue;
    const wanted = String((e.params as { missingProperty?: unknown }).missingProperty);
    const typo = raw.find((x) => x.keyword === 'additionalProperties' && x.instancePath === e.instancePath && closeEnough(String((x.params as { additionalProperty?: unknown }).additionalProperty), wanted));
    if (typo) misspelt.add(`${e.instancePath}|${wanted}`);
  }
  for (const e of raw) {
    // propertyNames reports the inner failure (with the offending key) as well; keep that one.
    if (e.keyword === 'propertyNames' || e.keyword === 'if') continue;
    if (e.keyword === 'required' && misspelt.has(`${e.instancePath}|${String((e.params as { missingProperty?: unknown }).missingProperty)}`)) continue;
    if (e.keyword === 'additionalProperties' && splitDecimals.has(e.instancePath) && /^\s*\d+\s*\)$/.test(String((e.params as { additionalProperty?: unknown }).additionalProperty))) continue;
    const path = pointerSegments(e.instancePath);
    const dedupeKey = `${e.instancePath}|${e.propertyName ?? ''}`;
    if (seen.has(dedupeKey)) continue;
    seen.add(dedupeKey);
    out.push(describe(source, path, e));
  }
  return out;
}

function describe(source: SourceDoc, path: Segment[], e: ErrorObject): FieldError {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const names = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      const suggestion = names.find((n) => closeEnough(key, n));
      const help = suggestion !== undefined ? ` (did you mean "${suggestion}"?)` : names.length > 0 ? ` (expected one of: ${names.join(', ')})` : '';
      return fieldError(source, [...path, key], `unknown key "${key}"${help}`, 'key');
    }
    case 'required':
      return fieldError(source, path, `missing required key "${String(params.missingProperty)}"`, path.length === 0 ? 'value' : 'key');
    case 'type':
      return fieldError(source, path, `must be ${typeName(params.type)} (got ${describeValue(e.data)})`);
    case 'enum':
      return fieldError(source, path, `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')} (got ${describeValue(e.data)})`);
    case 'const':
      return fieldError(source, path, `must be ${JSON.stringify(params.allowedValue)} (got ${describeValue(e.data)})`);
    case 'pattern':
    case 'maxLength': {
      if (e.propertyName !== undefined) {
        const what = path.at(-1) === 'tables' ? 'table name' : path.at(-1) === 'columns' ? 'column name' : 'name';
        return fieldError(source, [...path, e.propertyName], `${what} "${e.propertyName}" is not valid: ${NAME_RULE}`, 'key');
      }
      if (e.schemaPath.includes('/logicalType/')) {
        if (isSplitDecimal(e.data)) return fieldError(source, path, `unknown type ${describeValue(e.data)}: inside { … } a comma separates entries, so quote the type, e.g. type: "decimal(12,2)"`);
        return fieldError(source, path, `unknown type ${describeValue(e.data)} (expected one of: ${TYPE_LIST})`);
      }
      if (e.schemaPath.includes('/connectionName/')) {
        return fieldError(source, path, `connection name ${describeValue(e.data)} is not valid: lowercase letters, digits, - and _, at most 40 characters`);
      }
      return fieldError(source, path, `name ${describeValue(e.data)} is not valid: ${NAME_RULE}`);
    }
    case 'minItems':
      return fieldError(source, path, `must list at least ${String(params.limit)} item`);
    case 'uniqueItems': {
      const list = Array.isArray(e.data) ? e.data : [];
      const dup = list[Number(params.j)];
      return fieldError(source, path, `lists ${describeValue(dup)} twice`);
    }
    default:
      return fieldError(source, path, e.message ?? 'is not valid');
  }
}
