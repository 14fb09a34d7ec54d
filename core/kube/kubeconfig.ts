import fs from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../errors.ts';

/**
 * The part of a kubeconfig that KubeClient needs: the current cluster's server, the current
 * context's name and how to authenticate a request. `@kubernetes/client-node`'s KubeConfig has
 * this shape too; LiteKubeConfig implements it without loading client-node (about a second of
 * start-up), for the kubeconfigs people and `hack/cluster.sh` write: one file, a server, a CA,
 * a bearer token or a client certificate. Anything else (exec plugins, auth providers, several
 * files in KUBECONFIG, in-cluster service accounts) is left to client-node.
 */
export interface KubeConfigLike {
  getCurrentCluster(): { server: string } | null;
  getCurrentContext(): string;
  applyToHTTPSOptions(options: https.RequestOptions): Promise<void>;
}

const kubeconfigHint = 'pass --kubeconfig <file> or set KUBECONFIG to a kubeconfig that reaches your cluster';

/** Which kubeconfig file applies: the flag, else KUBECONFIG, else ~/.kube/config; undefined when none is set or present. */
export function kubeconfigSource(options: { kubeconfig?: string }, env: NodeJS.ProcessEnv = process.env): { files: string[]; explicit: boolean } {
  if (options.kubeconfig) return { files: [options.kubeconfig], explicit: true };
  const fromEnv = (env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f !== '');
  if (fromEnv.length > 0) return { files: fromEnv, explicit: true };
  const home = env.HOME || os.homedir();
  const file = path.join(home, '.kube', 'config');
  return { files: fs.existsSync(file) ? [file] : [], explicit: false };
}

/**
 * Reads a kubeconfig without client-node. Returns undefined when the file uses something only
 * client-node implements (the caller then loads that); throws a ValidationError naming
 * --kubeconfig/KUBECONFIG when the file cannot be read or names no usable cluster.
 */
export function loadLiteKubeConfig(file: string, contextName?: string): LiteKubeConfig | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError(`cannot read kubeconfig ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [], { hint: kubeconfigHint });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ValidationError(`kubeconfig ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, [], { hint: kubeconfigHint });
  }
  const config = (doc ?? {}) as RawKubeconfig;
  const name = contextName ?? config['current-context'];
  if (!name) throw new ValidationError(`kubeconfig ${file} has no current context`, [], { hint: 'pass --context <name> or set current-context in the kubeconfig' });
  const context = named(config.contexts, name)?.context;
  if (!context) throw new ValidationError(`kubeconfig ${file} has no context "${name}"`, [], { hint: kubeconfigHint });
  const cluster = named(config.clusters, context.cluster)?.cluster;
  if (!cluster?.server) throw new ValidationError(`kubeconfig ${file}: context "${name}" names no cluster with a server`, [], { hint: kubeconfigHint });
  const user = (context.user === undefined ? {} : named(config.users, context.user)?.user) ?? {};
  const supportedUser = new Set(['token', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data']);
  const supportedCluster = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name']);
  if (Object.keys(user).some((k) => !supportedUser.has(k)) || Object.keys(cluster).some((k) => !supportedCluster.has(k))) return undefined;
  return new LiteKubeConfig({ kubeconfig: file, ...(contextName ? { context: contextName } : {}) }, name, { ...cluster, server: cluster.server }, user);
}

interface RawCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
}
interface RawUser {
  token?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
}
interface RawKubeconfig {
  'current-context'?: string;
  clusters?: Array<{ name: string; cluster?: RawCluster }>;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string; namespace?: string } }>;
  users?: Array<{ name: string; user?: RawUser }>;
}

function named<T extends { name: string }>(list: T[] | undefined, name: string | undefined): T | undefined {
  return Array.isArray(list) ? list.find((x) => x?.name === name) : undefined;
}

export class LiteKubeConfig implements KubeConfigLike {
  private tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Where it was read from (file and context). */
  readonly source: { kubeconfig: string; context?: string };
  private readonly contextName: string;
  private readonly cluster: RawCluster & { server: string };
  private readonly user: RawUser;
  private readonly baseDir: string;

  // Plain fields, not parameter properties: the benchmarks run this file under Node's type
  // stripping, which has no parameter properties.
  constructor(source: { kubeconfig: string; context?: string }, contextName: string, cluster: RawCluster & { server: string }, user: RawUser) {
    this.source = source;
    this.contextName = contextName;
    this.cluster = cluster;
    this.user = user;
    this.baseDir = path.dirname(path.resolve(source.kubeconfig));
  }

  getCurrentCluster(): { server: string } {
    return { server: this.cluster.server };
  }

  getCurrentContext(): string {
    return this.contextName;
  }

  async applyToHTTPSOptions(options: https.RequestOptions): Promise<void> {
    // Files are read once per process, as client-node does.
    this.tls ??= {
      ...optional('ca', this.material(this.cluster['certificate-authority'], this.cluster['certificate-authority-data'])),
      ...optional('cert', this.material(this.user['client-certificate'], this.user['client-certificate-data'])),
      ...optional('key', this.material(this.user['client-key'], this.user['client-key-data'])),
    };
    Object.assign(options, this.tls);
    if (this.cluster['insecure-skip-tls-verify']) options.rejectUnauthorized = false;
    if (this.cluster['tls-server-name']) options.servername = this.cluster['tls-server-name'];
    if (this.user.token) options.headers = { ...options.headers, Authorization: `Bearer ${this.user.token}` };
  }

  private material(file: string | undefined, data: string | undefined): Buffer | undefined {
    if (data) return Buffer.from(data, 'base64');
    if (!file) return undefined;
    const resolved = path.resolve(this.baseDir, file);
    try {
      return fs.readFileSync(resolved);
    } catch (err) {
      throw new ValidationError(`cannot read ${resolved}, named in the kubeconfig: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [], { hint: kubeconfigHint });
    }
  }
}

function optional<K extends string>(key: K, value: Buffer | undefined): Partial<Record<K, Buffer>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, Buffer>);
}

/** Every context of a kubeconfig with its server URL (for `stk context set --hub`); [] when there is none to read. */
export function kubeconfigContexts(file: string): Array<{ name: string; server: string | undefined }> {
  let config: RawKubeconfig;
  try {
    config = (parseYaml(fs.readFileSync(file, 'utf8')) ?? {}) as RawKubeconfig;
  } catch {
    return [];
  }
  return (config.contexts ?? []).map((c) => ({ name: c.name, server: named(config.clusters, c.context?.cluster)?.cluster?.server }));
}

export { kubeconfigHint };
