import { Ajv2020 } from 'ajv/dist/2020.js';
import { ValidationError, type FieldError } from '../errors.ts';
import type { SchemaIR } from '../schema/ir.ts';
import { compareFieldErrors, fieldError, readSource, type Segment, type SourceDoc } from '../schema/source.ts';
import permissionsSchema from '../../schema/permissions.schema.json' with { type: 'json' };

/**
 * The permission policy of a release (`config/permissions.yaml`), validated against the release's
 * schema and compiled into the form the data plane enforces. Conditions are a closed grammar:
 * `resource.<column> == request.auth.sub` or `resource.<column> == "literal"`; anything else is an
 * error here, never a rule that silently passes.
 */

export const OPERATIONS = ['select', 'insert', 'update', 'delete'] as const;
export type Operation = (typeof OPERATIONS)[number];

export type CompiledCondition = { column: string; equals: { kind: 'sub' } | { kind: 'literal'; value: string } };

export interface CompiledRule {
  roles: string[];
  /** '*' or the columns this rule lets the caller read (select) or write (insert/update) */
  columns: '*' | string[];
  condition: CompiledCondition | null;
}

export interface PermissionPolicy {
  version: 1;
  /** table → operation → ordered rules */
  tables: Record<string, Partial<Record<Operation, CompiledRule[]>>>;
}

interface RawRule {
  roles: string[];
  columns?: string[];
  condition?: string;
}
type RawPolicy = { version?: 1; tables: Record<string, Partial<Record<Operation, RawRule | RawRule[]>>> };

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const validateShape = ajv.compile<RawPolicy>(permissionsSchema);

const conditionGrammar = /^\s*resource\.([a-z_][a-z0-9_]*)\s*==\s*(?:request\.auth\.sub|"([^"\\]*)"|'([^'\\]*)')\s*$/;

/** Parses a condition; undefined when it is outside the grammar. */
export function parseCondition(text: string): CompiledCondition | undefined {
  const m = conditionGrammar.exec(text);
  if (!m?.[1]) return undefined;
  const literal = m[2] ?? m[3];
  return { column: m[1], equals: literal === undefined ? { kind: 'sub' } : { kind: 'literal', value: literal } };
}

/**
 * Parses and validates `config/permissions.yaml` against the declared schema (all connections):
 * tables, columns and condition columns must exist. Throws one ValidationError listing every problem.
 */
export function compilePermissions(file: { path: string; text: string }, schemas: Readonly<Record<string, SchemaIR>>): PermissionPolicy {
  const source = readSource(file.path, file.text);
  const syntax = source.doc.errors[0];
  if (syntax) {
    const { line, col } = source.lines.linePos(syntax.pos[0]);
    throw new ValidationError('permissions are not valid', [{ path: file.path, line, column: col, message: syntax.message.split('\n')[0] ?? 'invalid YAML' }]);
  }
  const data = source.doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (!validateShape(data)) {
    const errors = (validateShape.errors ?? []).map((e) => shapeError(source, e.instancePath, e.message ?? 'is invalid', e.params as Record<string, unknown>, e.keyword));
    throw invalid(dedupe(errors));
  }

  const columnsOf = new Map<string, Set<string>>();
  for (const ir of Object.values(schemas)) for (const t of Object.values(ir.tables)) columnsOf.set(t.name, new Set(t.columns.map((c) => c.name)));

  const errors: FieldError[] = [];
  const policy: PermissionPolicy = { version: 1, tables: {} };
  for (const [table, ops] of Object.entries(data.tables)) {
    const columns = columnsOf.get(table);
    if (!columns) {
      errors.push(fieldError(source, ['tables', table], `unknown table "${table}" (not declared in schema/)`, 'key'));
      continue;
    }
    const compiled: Partial<Record<Operation, CompiledRule[]>> = {};
    for (const op of OPERATIONS) {
      const given = ops[op];
      if (given === undefined) continue;
      const rules = Array.isArray(given) ? given : [given];
      compiled[op] = rules.map((rule, i) => {
        const at: Segment[] = Array.isArray(given) ? ['tables', table, op, i] : ['tables', table, op];
        const cols = rule.columns ?? ['*'];
        if (cols.includes('*') && cols.length > 1) errors.push(fieldError(source, [...at, 'columns'], '"*" stands alone'));
        for (const [j, c] of cols.entries()) {
          if (c !== '*' && !columns.has(c)) errors.push(fieldError(source, [...at, 'columns', j], `unknown column "${c}" of table ${table}`));
        }
        let condition: CompiledCondition | null = null;
        if (rule.condition !== undefined) {
          const parsed = parseCondition(rule.condition);
          if (!parsed) errors.push(fieldError(source, [...at, 'condition'], 'unsupported condition: write resource.<column> == request.auth.sub or resource.<column> == "literal"'));
          else if (!columns.has(parsed.column)) errors.push(fieldError(source, [...at, 'condition'], `unknown column "${parsed.column}" of table ${table} in condition`));
          else condition = parsed;
        }
        return { roles: [...rule.roles], columns: cols.includes('*') ? '*' : [...cols], condition };
      });
    }
    policy.tables[table] = compiled;
  }
  if (errors.length > 0) throw invalid(errors);
  return policy;
}

/** The empty policy: every request is refused (used when a release has no permissions file). */
export function emptyPolicy(): PermissionPolicy {
  return { version: 1, tables: {} };
}

function invalid(errors: FieldError[]): ValidationError {
  errors.sort(compareFieldErrors);
  return new ValidationError(`permissions are not valid: ${errors.length} problem${errors.length === 1 ? '' : 's'}`, errors, {
    hint: 'schema/permissions.schema.json describes the format',
  });
}

function shapeError(source: SourceDoc, instancePath: string, message: string, params: Record<string, unknown>, keyword: string): FieldError {
  const path: Segment[] = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  if (keyword === 'additionalProperties') return fieldError(source, [...path, String(params.additionalProperty)], `unknown key "${String(params.additionalProperty)}"`, 'key');
  if (keyword === 'enum') return fieldError(source, path, `must be one of ${(params.allowedValues as unknown[]).join(', ')}`);
  return fieldError(source, path, message);
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.line}:${e.column}:${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
