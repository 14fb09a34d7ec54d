import { createHash } from 'node:crypto';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { ValidationError, type FieldError } from '../errors.ts';
import hostsSchema from '../../schema/hosts.schema.json' with { type: 'json' };

/**
 * `infra/hosts.yaml`: parse, validate (JSON Schema plus the rules a schema cannot say), and
 * expand into one desired host per environment and host name. Pure: no I/O, no clock.
 */

export const HOSTS_FILE_PATH = 'infra/hosts.yaml';

export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

/** An existing provider key (with the Secret holding its private half), or a generated pair. */
export type SshKeySpec =
  | { readonly name: string; readonly privateKeySecretRef: SecretKeyRef }
  | { readonly generate: true };

export interface BootstrapSpec {
  readonly docker: { readonly enabled: boolean };
  readonly tailscale?: { readonly authKeySecretRef: SecretKeyRef; readonly tags: readonly string[] };
}

export type DeletionPolicy = 'Delete' | 'Orphan';

interface HostEntry {
  readonly role?: string;
  readonly region?: string;
  readonly size?: string;
  readonly image?: string;
  readonly tags?: readonly string[];
  readonly deletionPolicy?: DeletionPolicy;
  readonly adopt?: AdoptPolicy;
}

/** `byName`: a droplet with the host's name but without the ownership tag is adopted instead of refused. */
export type AdoptPolicy = 'byName';

/** The validated content of `infra/hosts.yaml`. */
export interface HostsFile {
  readonly provider: 'digitalocean';
  readonly credentialsSecretRef: SecretKeyRef;
  readonly defaults?: { readonly region?: string; readonly size?: string; readonly image?: string; readonly tags?: readonly string[] };
  readonly sshKey: SshKeySpec;
  readonly bootstrap?: {
    readonly docker?: { readonly enabled?: boolean };
    readonly tailscale?: { readonly authKeySecretRef: SecretKeyRef; readonly tags?: readonly string[] };
  };
  readonly deletionPolicy?: DeletionPolicy;
  readonly environments: Readonly<Record<string, Readonly<Record<string, HostEntry>>>>;
}

/** One host of one environment, fully resolved: what an InfraHost resource is made from. */
export interface DesiredHost {
  readonly project: string;
  readonly environment: string;
  readonly host: string;
  readonly role: string | undefined;
  readonly provider: 'digitalocean';
  readonly region: string;
  readonly size: string;
  readonly image: string;
  /** managed tags (`santokit`, `santokit-env-<env>`) plus user tags, sorted; the ownership tag is added per resource */
  readonly tags: readonly string[];
  /** the user tags alone (what goes into the InfraHost spec) */
  readonly userTags: readonly string[];
  readonly sshKey: SshKeySpec;
  readonly bootstrap: BootstrapSpec;
  readonly credentialsSecretRef: SecretKeyRef;
  readonly deletionPolicy: DeletionPolicy;
  /** set only when the file says so */
  readonly adopt?: AdoptPolicy;
  /** `<project>-<env>-<host>`, sanitised to the provider's hostname rules */
  readonly dropletName: string;
  /** the InfraHost resource name in the project namespace: `<env>-<host>` */
  readonly resourceName: string;
}

/** The InfraHost `spec` (crds/infrahost.yaml) for one desired host. */
export interface InfraHostSpec {
  readonly project: string;
  readonly environment: string;
  readonly host: string;
  readonly role?: string;
  readonly provider: 'digitalocean';
  readonly region: string;
  readonly size: string;
  readonly image: string;
  readonly tags: readonly string[];
  readonly credentialsSecretRef: SecretKeyRef;
  readonly sshKey: SshKeySpec;
  readonly bootstrap: BootstrapSpec;
  readonly deletionPolicy: DeletionPolicy;
  readonly adopt?: AdoptPolicy;
}

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** The tag prefix Santokit owns; user tags may not use it (validated by the schema). */
export const MANAGED_TAG_PREFIX = 'santokit';
/** DigitalOcean allows longer names, but a droplet name becomes the hostname: keep it one DNS label. */
const MAX_DROPLET_NAME = 63;

/** The tags every Santokit host of `environment` carries, sorted. */
export function managedTags(environment: string): string[] {
  return [MANAGED_TAG_PREFIX, `${MANAGED_TAG_PREFIX}-env-${environment}`];
}

/** The tag that identifies the one cloud host of one InfraHost resource: `santokit-owner-<uid>`. */
export function ownershipTag(uid: string): string {
  const normalised = uid.trim().toLowerCase();
  if (!/^[0-9a-f][0-9a-f-]{7,63}$/.test(normalised)) {
    throw new ValidationError(`resource uid "${uid}" cannot be used in an ownership tag: expected a Kubernetes uid (hex and dashes)`);
  }
  return `${MANAGED_TAG_PREFIX}-owner-${normalised}`;
}

/** All tags the cloud host of an InfraHost must carry: managed, user and ownership tags, sorted and unique. */
export function hostTags(spec: Pick<InfraHostSpec, 'environment' | 'tags'>, uid: string): string[] {
  return sortedUnique([...managedTags(spec.environment), ...spec.tags, ownershipTag(uid)]);
}

/**
 * `<project>-<env>-<host>` made a valid hostname label: lowercase, only `a-z0-9-`, no leading,
 * trailing or doubled dashes, at most 63 characters. A name that has to be shortened keeps a
 * short hash of the full name, so two long names never shorten to the same string.
 */
export function dropletName(project: string, environment: string, host: string): string {
  const full = `${project}-${environment}-${host}`;
  let name = full
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
  if (name === '') name = 'host';
  if (name.length > MAX_DROPLET_NAME) {
    const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
    name = `${name.slice(0, MAX_DROPLET_NAME - hash.length - 1).replace(/-+$/, '')}-${hash}`;
  }
  return name;
}

/** The InfraHost resource name of a host: `<env>-<host>` (both DNS labels, so the result is valid). */
export function infraHostResourceName(environment: string, host: string): string {
  return `${environment}-${host}`;
}

export interface ParseOptions {
  /** shown in errors; defaults to `infra/hosts.yaml` */
  readonly path?: string;
}

let compiled: ReturnType<Ajv2020['compile']> | undefined;
function validator(): ReturnType<Ajv2020['compile']> {
  if (compiled === undefined) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, verbose: true });
    ajv.addVocabulary(['x-message']);
    compiled = ajv.compile(hostsSchema);
  }
  return compiled;
}

/**
 * Parses and validates the text of `infra/hosts.yaml`. Every problem is reported at once in one
 * ValidationError whose field errors carry line and column.
 */
export function parseHostsFile(text: string, options: ParseOptions = {}): HostsFile {
  const path = options.path ?? HOSTS_FILE_PATH;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined): { line?: number; column?: number } => {
    if (offset === undefined) return {};
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };

  if (doc.errors.length > 0) {
    const problems: FieldError[] = doc.errors.map((e) => ({ path, message: `YAML: ${firstLine(e.message)}`, ...at(e.pos[0]) }));
    throw new ValidationError(`${path} is not valid YAML`, problems, { hint: 'fix the YAML syntax at the positions shown' });
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) {
    throw new ValidationError(`${path} is empty`, [{ path, message: 'the file has no content; see config/infra/hosts.yaml for an example', line: 1, column: 1 }]);
  }

  const validate = validator();
  if (!validate(data)) {
    const problems = schemaProblems(validate.errors ?? [], doc, path, at);
    throw new ValidationError(`${path} does not match schema/hosts.schema.json`, problems);
  }
  const file = data as HostsFile;

  const problems = semanticProblems(file, doc, path, at);
  if (problems.length > 0) throw new ValidationError(`${path} is inconsistent`, problems);
  return deepFreeze(file);
}

export interface ExpandOptions {
  /** the Santokit project (a DNS label, at most 50 characters) */
  readonly project: string;
  /** only this environment; all environments when absent */
  readonly environment?: string;
}

/** Expands a validated hosts file into desired hosts, sorted by environment then host name. */
export function desiredHosts(file: HostsFile, options: ExpandOptions): DesiredHost[] {
  const { project } = options;
  if (!DNS_LABEL.test(project) || project.length > 50) {
    throw new ValidationError(`project "${project}" is not a valid project name`, [
      { path: 'project', message: 'must be a DNS label: lowercase letters, digits and dashes, starting with a letter, at most 50 characters' },
    ]);
  }
  const envNames = Object.keys(file.environments).sort(compareStrings);
  if (options.environment !== undefined && !envNames.includes(options.environment)) {
    throw new ValidationError(`environment "${options.environment}" is not declared in ${HOSTS_FILE_PATH}`, [], {
      hint: `declared environments: ${envNames.join(', ')}`,
    });
  }

  const bootstrap: BootstrapSpec = {
    docker: { enabled: file.bootstrap?.docker?.enabled ?? true },
    ...(file.bootstrap?.tailscale === undefined
      ? {}
      : {
          tailscale: {
            authKeySecretRef: { ...file.bootstrap.tailscale.authKeySecretRef },
            tags: sortedUnique(file.bootstrap.tailscale.tags ?? []),
          },
        }),
  };

  const out: DesiredHost[] = [];
  for (const environment of envNames) {
    if (options.environment !== undefined && environment !== options.environment) continue;
    const hosts = file.environments[environment] ?? {};
    for (const host of Object.keys(hosts).sort(compareStrings)) {
      const entry = hosts[host] ?? {};
      // parseHostsFile guarantees these resolve; the fallback only satisfies the type checker.
      const region = entry.region ?? file.defaults?.region ?? '';
      const size = entry.size ?? file.defaults?.size ?? '';
      const image = entry.image ?? file.defaults?.image ?? '';
      const userTags = sortedUnique(entry.tags ?? file.defaults?.tags ?? []);
      out.push(
        deepFreeze({
          project,
          environment,
          host,
          role: entry.role,
          provider: file.provider,
          region,
          size,
          image,
          tags: sortedUnique([...managedTags(environment), ...userTags]),
          userTags,
          sshKey: structuredClone(file.sshKey),
          bootstrap: structuredClone(bootstrap),
          credentialsSecretRef: { ...file.credentialsSecretRef },
          deletionPolicy: entry.deletionPolicy ?? file.deletionPolicy ?? 'Delete',
          ...(entry.adopt === undefined ? {} : { adopt: entry.adopt }),
          dropletName: dropletName(project, environment, host),
          resourceName: infraHostResourceName(environment, host),
        }),
      );
    }
  }
  return out;
}

/** Parses, validates and expands in one call. */
export function loadDesiredHosts(text: string, options: ExpandOptions & ParseOptions): DesiredHost[] {
  return desiredHosts(parseHostsFile(text, options), options);
}

/** The InfraHost spec for a desired host (user tags only: managed and ownership tags are derived). */
export function toInfraHostSpec(host: DesiredHost): InfraHostSpec {
  return {
    project: host.project,
    environment: host.environment,
    host: host.host,
    ...(host.role === undefined ? {} : { role: host.role }),
    provider: host.provider,
    region: host.region,
    size: host.size,
    image: host.image,
    tags: [...host.userTags],
    credentialsSecretRef: { ...host.credentialsSecretRef },
    sshKey: structuredClone(host.sshKey) as SshKeySpec,
    bootstrap: structuredClone(host.bootstrap) as BootstrapSpec,
    deletionPolicy: host.deletionPolicy,
    ...(host.adopt === undefined ? {} : { adopt: host.adopt }),
  };
}

// ---------------------------------------------------------------------------------------------

type Locate = (offset: number | undefined) => { line?: number; column?: number };

function semanticProblems(file: HostsFile, doc: Document, path: string, at: Locate): FieldError[] {
  const problems: FieldError[] = [];
  const seenNames = new Map<string, string>();
  for (const environment of Object.keys(file.environments).sort(compareStrings)) {
    const hosts = file.environments[environment] ?? {};
    for (const host of Object.keys(hosts).sort(compareStrings)) {
      const entry = hosts[host] ?? {};
      const where = ['environments', environment, host];
      for (const field of ['region', 'size', 'image'] as const) {
        if (entry[field] === undefined && file.defaults?.[field] === undefined) {
          problems.push({
            path,
            message: `${where.join('.')}: has no ${field}; set it on the host or under defaults.${field}`,
            ...at(offsetOf(doc, where)),
          });
        }
      }
      // Names are not identities (the ownership tag is), but equal hostnames on one tailnet or in
      // one console are a trap: `a-b` + `c` and `a` + `b-c` would both become `<project>-a-b-c`.
      const key = `${environment}-${host}`;
      const previous = seenNames.get(key);
      if (previous !== undefined) {
        problems.push({ path, message: `${where.join('.')}: gives the same host name "${key}" as ${previous}`, ...at(offsetOf(doc, where, true)) });
      } else {
        seenNames.set(key, where.join('.'));
      }
    }
  }
  return problems;
}

function schemaProblems(errors: readonly ErrorObject[], doc: Document, path: string, at: Locate): FieldError[] {
  // A failed oneOf reports every branch's complaint too; keep only the oneOf's own message.
  const oneOfPaths = errors.filter((e) => e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const seen = new Set<string>();
  const problems: FieldError[] = [];
  for (const e of errors) {
    if (e.keyword !== 'oneOf' && oneOfPaths.some((p) => e.schemaPath.startsWith(p))) continue;
    if (e.keyword === 'if' || e.keyword === 'not') continue;
    const segments = pointerSegments(e.instancePath);
    let message: string;
    let offset: number | undefined;
    switch (e.keyword) {
      case 'required':
        message = `missing required field "${String(e.params.missingProperty)}"`;
        offset = offsetOf(doc, segments);
        break;
      case 'additionalProperties':
        message = `unknown field "${String(e.params.additionalProperty)}"`;
        offset = offsetOf(doc, [...segments, String(e.params.additionalProperty)], true);
        break;
      case 'propertyNames':
        // the nested error (pattern/maxLength) carries the detail; this one names the key
        continue;
      case 'enum':
        message = `must be one of: ${(e.params.allowedValues as unknown[]).map(String).join(', ')}`;
        offset = offsetOf(doc, segments);
        break;
      case 'const':
        message = `must be ${JSON.stringify(e.params.allowedValue)}`;
        offset = offsetOf(doc, segments);
        break;
      case 'uniqueItems':
        message = 'must not list the same value twice';
        offset = offsetOf(doc, segments);
        break;
      default: {
        const custom = (e.parentSchema as { 'x-message'?: unknown } | undefined)?.['x-message'];
        message = typeof custom === 'string' && ['pattern', 'maxLength', 'minLength', 'oneOf'].includes(e.keyword) ? custom : (e.message ?? 'is invalid');
        offset = offsetOf(doc, segments);
      }
    }
    const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
    let dotted = segments.join('.');
    if (propertyName !== undefined) {
      dotted = [...segments, propertyName].join('.');
      offset = offsetOf(doc, [...segments, propertyName], true);
    }
    const line = `${dotted === '' ? '(top level)' : dotted}: ${message}`;
    if (seen.has(line)) continue;
    seen.add(line);
    problems.push({ path, message: line, ...at(offset) });
  }
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The source offset of the node at `segments` (or of its key), else of the deepest ancestor found. */
function offsetOf(doc: Document, segments: readonly string[], preferKey = false): number | undefined {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (pair === undefined) return offset;
      const last = i === segments.length - 1;
      if (last && preferKey) return rangeStart(pair.key) ?? offset;
      node = pair.value ?? pair.key;
      offset = rangeStart(node) ?? rangeStart(pair.key) ?? offset;
    } else if (isSeq(node)) {
      node = node.items[Number(seg)];
      offset = rangeStart(node) ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareStrings);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
