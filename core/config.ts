import { createRequire } from 'node:module';
import type { Ajv as AjvInstance, ValidateFunction } from 'ajv';
import { ValidationError, type FieldError } from './errors.ts';

/**
 * The one config loader. A config is described once as a list of fields; each value comes from a
 * flag, else an environment variable, else the default. Everything is validated together (every
 * problem reported at once, naming the flag and the variable) and the result is frozen.
 */

type FieldType = 'string' | 'integer' | 'boolean';

export interface ConfigField {
  readonly type: FieldType;
  /** environment variable, e.g. SANTOKIT_HEALTH_PORT */
  readonly env?: string;
  /** flag without dashes, e.g. health-port */
  readonly flag?: string;
  readonly default?: string | number | boolean;
  readonly required?: boolean;
  readonly description: string;
  /** extra JSON Schema keywords: minimum, maximum, enum, pattern … */
  readonly schema?: Record<string, unknown>;
}

export type ConfigSpec = Readonly<Record<string, ConfigField>>;

type ValueOf<F extends ConfigField> = F['type'] extends 'integer' ? number : F['type'] extends 'boolean' ? boolean : string;
export type ConfigOf<S extends ConfigSpec> = {
  readonly [K in keyof S]: S[K]['required'] extends true ? ValueOf<S[K]> : S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

export interface ConfigSources {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** parsed flags keyed by flag name (`health-port`) */
  readonly flags?: Readonly<Record<string, string | boolean | undefined>>;
  /** values from a file (such as `.stk/context.json`) keyed by field name, below env and flags */
  readonly file?: Readonly<Record<string, unknown>>;
  /** name of that file, for error messages */
  readonly fileName?: string;
}

/** The options every config validator is compiled with (also ahead of time: hack/build-cli.mjs). */
export const ajvOptions = { allErrors: true, strict: true } as const;
// Loaded and made on first use: loading ajv and creating an instance (it adds and checks its
// meta-schema) cost a short-lived process such as `stk`, whose validators are compiled ahead of
// time, more than anything else it does before its first request.
let ajv: AjvInstance | undefined;
function compiler(): AjvInstance {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
  return (ajv ??= new Ajv(ajvOptions));
}

/** Validators by schema (JSON text): compiled once, or ahead of time and handed in (usePrecompiledValidators). */
const validators = new Map<string, ValidateFunction>();

/**
 * Hands in validators compiled ahead of time with ajv's standalone code (the same code ajv would
 * generate here), keyed by the JSON text of configSchema(spec): a short-lived process such as
 * `stk` then skips compiling (most of its config-loading time).
 */
export function usePrecompiledValidators(precompiled: Readonly<Record<string, ValidateFunction>>): void {
  for (const [schema, validate] of Object.entries(precompiled)) validators.set(schema, validate);
}

/** The JSON Schema a spec's values are validated against. */
export function configSchema(spec: ConfigSpec): Record<string, unknown> {
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(spec).map(([k, f]) => [k, { type: f.type, ...f.schema }])),
    required: Object.entries(spec)
      .filter(([, f]) => f.required)
      .map(([k]) => k),
    additionalProperties: false,
  };
}

/** Loads, validates and freezes a config; throws one ValidationError naming every bad field. */
export function loadConfig<S extends ConfigSpec>(spec: S, sources: ConfigSources): ConfigOf<S> {
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const problems: FieldError[] = [];

  for (const [key, field] of Object.entries(spec)) {
    const fromFlag = field.flag === undefined ? undefined : sources.flags?.[field.flag];
    const fromEnv = field.env === undefined ? undefined : sources.env?.[field.env];
    const fromFile = sources.file?.[key];
    const given = fromFlag ?? fromEnv ?? (fromFile === undefined || fromFile === null ? undefined : (fromFile as string | boolean | number));
    const sourceName = fromFlag !== undefined ? `--${field.flag}` : fromEnv !== undefined ? field.env : fromFile !== undefined ? `${sources.fileName ?? 'file'} ${key}` : undefined;
    const where = sourceName ?? ([field.flag && `--${field.flag}`, field.env].filter(Boolean).join(' / ') || key);
    origin[key] = where;
    if (given === undefined || given === '') {
      if (field.default !== undefined) raw[key] = field.default;
      continue;
    }
    const coerced = coerce(field.type, given);
    if (coerced === undefined) {
      problems.push({ path: where, message: `must be ${field.type === 'integer' ? 'an integer' : 'a boolean (true/false)'}, got "${String(given)}"` });
      continue;
    }
    raw[key] = coerced;
  }

  const schema = configSchema(spec);
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) validators.set(key, (validate = (ajv ?? compiler()).compile(schema)));
  if (!validate(raw)) {
    for (const e of validate.errors ?? []) {
      const key = e.keyword === 'required' ? String(e.params.missingProperty) : e.instancePath.replace(/^\//, '');
      if (problems.some((p) => p.path === origin[key])) continue;
      const message =
        e.keyword === 'required'
          ? 'is required'
          : e.keyword === 'enum'
            ? `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}, got "${String(raw[key])}"`
            : `${e.message ?? 'is invalid'}, got "${String(raw[key])}"`;
      problems.push({ path: origin[key] ?? key, message });
    }
  }
  if (problems.length > 0) throw new ValidationError(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`, problems);
  return Object.freeze(raw) as ConfigOf<S>;
}

function coerce(type: FieldType, value: string | boolean | number): unknown {
  if (type === 'string') return typeof value === 'string' ? value : undefined;
  if (typeof value === 'number') return type === 'integer' && Number.isInteger(value) ? value : undefined;
  if (type === 'boolean') {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    return undefined;
  }
  if (typeof value !== 'string' || !/^-?\d+$/.test(value.trim())) return undefined;
  return Number(value);
}
