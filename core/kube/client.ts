import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  ConflictError,
  ForbiddenError,
  InternalError,
  NotFoundError,
  ObjectTooLargeError,
  SantokitError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from '../errors.ts';
import { apiVersionOf, type KindInfo } from '../api/resources.ts';
import { kubeconfigHint, kubeconfigSource, loadLiteKubeConfig, type KubeConfigLike } from './kubeconfig.ts';

/**
 * The one Kubernetes client wrapper. client-node provides kubeconfig loading, authentication
 * and TLS (`applyToHTTPSOptions`) where the lite reader cannot; this wrapper speaks REST paths
 * directly, watches included, so every kind, subresource, patch type and `Accept` (metadata-only
 * lists and watches) goes through one code path, and maps API errors (by status code and Status
 * reason, never by message text) onto the Santokit error hierarchy.
 */

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** What a metadata-only list or watch holds of an object: its kind and its metadata, no spec or status. */
export type PartialObject = {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObject['metadata'];
};

/**
 * `Accept` values that make the API server answer with PartialObjectMetadata(List): only each
 * object's metadata goes over the wire and into memory, whatever the size of its spec.
 */
export const METADATA_ONLY_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
export const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

export interface WatchOptions {
  /** only metadata (PartialObjectMetadata) in each event */
  metadataOnly?: boolean;
  /** how long to wait for the response headers (the stream itself has no inactivity timeout: callers notice stalls) */
  connectTimeoutMs?: number;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface KubeClientOptions {
  kubeconfig?: string;
  context?: string;
}

export type PatchType = 'merge' | 'apply' | 'json';

const contentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  apply: 'application/apply-patch+yaml',
  json: 'application/json-patch+json',
};

/** A Kubernetes `Status` object as returned in error bodies. */
interface ApiStatus {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export class KubeClient {
  readonly config: KubeConfigLike;
  private readonly server: URL;

  constructor(config: KubeConfigLike) {
    this.config = config;
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new ValidationError('the kubeconfig has no current cluster', [], { hint: kubeconfigHint });
    this.server = new URL(cluster.server);
  }

  /**
   * Loads a kubeconfig from a path, KUBECONFIG or ~/.kube/config (else the in-cluster service
   * account). A plain one-file kubeconfig (server, CA, token or client certificate) is read
   * directly; client-node, which costs about a second to import, is loaded only for what needs it
   * (exec plugins, auth providers, several files, in-cluster). No kubeconfig at all
   * outside a cluster is an error naming --kubeconfig/KUBECONFIG, never a guessed localhost.
   */
  static async load(options: KubeClientOptions = {}): Promise<KubeClient> {
    const source = kubeconfigSource(options);
    if (source.files.length === 1) {
      const lite = loadLiteKubeConfig(source.files[0]!, options.context);
      if (lite) return new KubeClient(lite);
    }
    if (source.files.length === 0 && !process.env.KUBERNETES_SERVICE_HOST) {
      throw new ValidationError('no kubeconfig: KUBECONFIG is not set, ~/.kube/config does not exist and this is not a Pod', [], { hint: kubeconfigHint });
    }
    return new KubeClient(await loadFullKubeConfig(options));
  }

  get currentContext(): string {
    return this.config.getCurrentContext();
  }

  get serverUrl(): string {
    return this.server.toString();
  }

  /** The REST path of a collection or of one object. */
  static path(kind: KindInfo, namespace?: string, name?: string, subresource?: string): string {
    const base = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
    const ns = kind.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    const obj = name === undefined ? '' : `/${encodeURIComponent(name)}`;
    const sub = subresource === undefined ? '' : `/${subresource}`;
    return `${base}${ns}/${kind.plural}${obj}${sub}`;
  }

  async get<T extends KubeObject>(kind: KindInfo, name: string, namespace?: string): Promise<T> {
    return this.request<T>('GET', KubeClient.path(kind, namespace, name));
  }

  /** Like get, but undefined when the object does not exist. */
  async find<T extends KubeObject>(kind: KindInfo, name: string, namespace?: string): Promise<T | undefined> {
    try {
      return await this.get<T>(kind, name, namespace);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** Lists every page of a collection; `namespace` undefined lists across namespaces. */
  async list<T extends KubeObject>(kind: KindInfo, options: { namespace?: string; labelSelector?: string } = {}): Promise<ListResult<T>> {
    return this.listPages<T>(kind, options, false);
  }

  /**
   * Lists only the metadata of every object of a collection (PartialObjectMetadataList): the API
   * server never sends spec or status, so neither is parsed or held, whatever their size. Items
   * carry the kind's apiVersion and kind.
   */
  async listMetadata(kind: KindInfo, options: { namespace?: string; labelSelector?: string } = {}): Promise<ListResult<PartialObject>> {
    return this.listPages<PartialObject>(kind, options, true);
  }

  private async listPages<T extends PartialObject>(kind: KindInfo, options: { namespace?: string; labelSelector?: string }, metadataOnly: boolean): Promise<ListResult<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    const apiVersion = apiVersionOf(kind);
    do {
      const query: Record<string, string> = { limit: '500' };
      if (options.labelSelector) query.labelSelector = options.labelSelector;
      if (continueToken) query.continue = continueToken;
      const page = await this.request<{ items?: T[] | null; metadata: { resourceVersion: string; continue?: string } }>('GET', KubeClient.path(kind, options.namespace), {
        query,
        ...(metadataOnly ? { accept: METADATA_ONLY_LIST } : {}),
      });
      // An empty PartialObjectMetadataList comes without `items`.
      for (const item of page.items ?? []) items.push(metadataOnly ? ({ apiVersion, kind: kind.kind, metadata: item.metadata } as T) : { ...item, apiVersion, kind: kind.kind });
      resourceVersion = page.metadata.resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return { items, resourceVersion };
  }

  async create<T extends KubeObject>(kind: KindInfo, obj: T, options: { dryRun?: boolean; fieldManager?: string } = {}): Promise<T> {
    const query: Record<string, string> = {};
    if (options.dryRun) query.dryRun = 'All';
    if (options.fieldManager) query.fieldManager = options.fieldManager;
    return this.request<T>('POST', KubeClient.path(kind, obj.metadata.namespace), { body: obj, query });
  }

  /** Server-side apply with one field manager; `force` takes ownership of conflicting fields. */
  async apply<T extends KubeObject>(kind: KindInfo, obj: T, options: { fieldManager: string; force?: boolean; dryRun?: boolean; subresource?: string }): Promise<T> {
    const query: Record<string, string> = { fieldManager: options.fieldManager };
    if (options.force) query.force = 'true';
    if (options.dryRun) query.dryRun = 'All';
    const body = { ...obj, apiVersion: apiVersionOf(kind), kind: kind.kind };
    return this.request<T>('PATCH', KubeClient.path(kind, obj.metadata.namespace, obj.metadata.name, options.subresource), {
      body,
      query,
      contentType: contentTypes.apply,
    });
  }

  /** A JSON merge patch (or JSON patch) of an object or a subresource such as `status`. */
  async patch<T extends KubeObject>(
    kind: KindInfo,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    options: { type?: PatchType; subresource?: string; fieldManager?: string } = {},
  ): Promise<T> {
    const query: Record<string, string> = {};
    if (options.fieldManager) query.fieldManager = options.fieldManager;
    return this.request<T>('PATCH', KubeClient.path(kind, namespace, name, options.subresource), {
      body: patch,
      query,
      contentType: contentTypes[options.type ?? 'merge'],
    });
  }

  /** Deletes an object; true if it was there. */
  async delete(kind: KindInfo, name: string, namespace?: string, options: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' } = {}): Promise<boolean> {
    try {
      await this.request('DELETE', KubeClient.path(kind, namespace, name), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: options.propagationPolicy ?? 'Background' },
      });
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** POSTs to a virtual resource such as SelfSubjectReview or SelfSubjectAccessReview. */
  async post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /**
   * Starts a watch; `onEvent` receives each event, `onDone` the end of the stream once (undefined
   * when the server closed it normally, else the error: a non-200 answer is mapped like any
   * request's). Resolves with the AbortController that stops it once the answer has begun (or
   * failed). The stream goes through the same TLS and credentials as every request, and may ask
   * for metadata only.
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, object: KubeObject) => void,
    onDone: (err: unknown) => void,
    options: WatchOptions = {},
  ): Promise<AbortController> {
    const url = new URL(path, this.server);
    url.searchParams.set('watch', 'true');
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const requestOptions: https.RequestOptions = {
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      headers: { Accept: options.metadataOnly ? METADATA_ONLY : 'application/json' },
    };
    const controller = new AbortController();
    let finished = false;
    const done = (err: unknown) => {
      if (finished) return;
      finished = true;
      controller.abort();
      onDone(err);
    };
    try {
      await this.config.applyToHTTPSOptions(requestOptions);
    } catch (err) {
      done(err);
      return controller;
    }
    const transport = url.protocol === 'http:' ? http : https;
    const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    await new Promise<void>((started) => {
      const req = transport.request({ ...requestOptions, signal: controller.signal }, (res) => {
        req.setTimeout(0);
        started();
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => done(errorFromResponse(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), 'WATCH', url.pathname)));
          res.on('error', (err) => done(err));
          return;
        }
        const lines = createInterface({ input: res, crlfDelay: Infinity });
        lines.on('line', (line) => {
          if (finished || line === '') return;
          let event: { type?: string; object?: KubeObject };
          try {
            event = JSON.parse(line) as { type?: string; object?: KubeObject };
          } catch {
            return;
          }
          if (event.type && event.object) onEvent(event.type, event.object);
        });
        const failed = (err: unknown) => done(controller.signal.aborted ? undefined : err);
        lines.on('error', failed);
        res.on('error', failed);
        // After an error, readline closes too: done() only reports the first outcome.
        lines.on('close', () => done(undefined));
      });
      req.setTimeout(connectTimeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        started();
        if (controller.signal.aborted) return done(undefined);
        done(new UnavailableError(`cannot reach the Kubernetes API server (WATCH ${url.pathname}): ${err.code ?? err.message}`, { cause: err, reason: 'ClusterUnreachable' }));
      });
      req.end();
    });
    return controller;
  }

  /** One REST call. Errors come back as SantokitErrors. */
  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; query?: Record<string, string>; contentType?: string; timeoutMs?: number; accept?: string } = {},
  ): Promise<T> {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const requestOptions: https.RequestOptions = {
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      headers: { Accept: options.accept ?? 'application/json' },
    };
    await this.config.applyToHTTPSOptions(requestOptions);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (payload !== undefined) {
      requestOptions.headers = { ...requestOptions.headers, 'Content-Type': options.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(payload) };
    }
    const { status, text } = await send(url.protocol, requestOptions, payload, options.timeoutMs ?? 30_000, `${method} ${url.pathname}`);
    if (status >= 200 && status < 300) return (text === '' ? undefined : JSON.parse(text)) as T;
    throw errorFromResponse(status, text, method, url.pathname, payload === undefined ? undefined : sentObject(options.body, Buffer.byteLength(payload)));
  }
}

/** client-node's KubeConfig, for what LiteKubeConfig leaves to it. */
async function loadFullKubeConfig(options: KubeClientOptions): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new ValidationError(`cannot read kubeconfig${options.kubeconfig ? ` ${options.kubeconfig}` : ''}: ${(err as Error).message}`, [], { hint: kubeconfigHint });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) throw new ValidationError(`kubeconfig has no context "${options.context}"`, [], { hint: 'pass --context <name> naming a context of the kubeconfig' });
    kc.setCurrentContext(options.context);
  }
  return kc;
}

function send(protocol: string, options: https.RequestOptions, payload: string | undefined, timeoutMs: number, what: string): Promise<{ status: number; text: string }> {
  const transport = protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = transport.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(new UnavailableError(`cannot reach the Kubernetes API server (${what}): ${err.code ?? err.message}`, { cause: err, reason: 'ClusterUnreachable' })),
    );
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** What a request sent: the object's kind and name, and the body's size. */
export interface SentObject {
  kind?: string;
  name?: string;
  namespace?: string;
  bytes: number;
}

function sentObject(body: unknown, bytes: number): SentObject {
  const obj = body as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | undefined;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const kind = str(obj?.kind);
  const name = str(obj?.metadata?.name);
  const namespace = str(obj?.metadata?.namespace);
  return { bytes, ...(kind ? { kind } : {}), ...(name ? { name } : {}), ...(namespace ? { namespace } : {}) };
}

/** Maps an API error response onto the hierarchy, by HTTP code and Status reason. */
export function errorFromResponse(status: number, text: string, method: string, path: string, sent?: SentObject): SantokitError {
  let body: ApiStatus = {};
  try {
    body = JSON.parse(text) as ApiStatus;
  } catch {
    /* not a Status object */
  }
  const message = body.message ?? `${method} ${path} answered ${status}`;
  const reason = body.reason;
  const tooLarge = objectTooLarge(status, message, method, path, sent);
  if (tooLarge) return tooLarge;
  switch (status) {
    case 400:
    case 422: {
      // The API server's message already names every invalid field.
      return new ValidationError(message, [], { reason: 'Invalid' });
    }
    case 401:
      return new UnauthorizedError(message, { hint: 'check your kubeconfig credentials (stk login)' });
    case 403:
      return new ForbiddenError(message);
    case 404:
      return new NotFoundError(message);
    case 409:
      return new ConflictError(message, { reason: reason ?? 'Conflict', retryable: reason === 'Conflict' });
    case 410:
      return new ConflictError(message, { reason: 'Expired', retryable: true });
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return new UnavailableError(message, { reason: reason ?? 'Unavailable' });
    default:
      return new InternalError(message);
  }
}

/** True for the API's "already exists" conflict. */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ConflictError && err.reason === 'AlreadyExists';
}

/**
 * The size refusals of the API server and etcd, as one ObjectTooLargeError. These are the one
 * place matched by message text: etcd's refusal reaches us as a 500 with no reason of its own,
 * and a ConfigMap or annotation over its limit as a 422 like any other invalid field.
 */
function objectTooLarge(status: number, message: string, method: string, path: string, sent: SentObject | undefined): ObjectTooLargeError | undefined {
  let limitBytes: number | undefined;
  let limit: string;
  if (status === 413) {
    limitBytes = numberAfter(message, /limit is (\d+)/);
    limit = "the API server's request body limit";
  } else if (/request is too large/i.test(message)) {
    limit = "etcd's request limit (--max-request-bytes, 1.5 MiB unless the cluster sets it)";
  } else if (/trying to send message larger than max/.test(message)) {
    // the API server's gRPC client refuses to send etcd more than it may receive
    limitBytes = numberAfter(message, /larger than max \(\d+ vs\. (\d+)\)/);
    limit = "the API server's limit for one write to etcd";
  } else if ((status === 422 || status === 400) && TOTAL_TOO_LONG.test(message)) {
    // `[]` is the whole data of a ConfigMap or Secret; a single field over its maxLength is not a size problem
    limitBytes = numberAfter(message, TOTAL_TOO_LONG);
    limit = /metadata\.annotations/.test(message) ? 'the limit of all annotations of an object' : 'the limit of the object\'s data';
  } else {
    return undefined;
  }
  const what = sent?.kind && sent.name ? `${sent.kind} ${sent.name}${sent.namespace ? ` in namespace ${sent.namespace}` : ''}` : `the object of ${method} ${path}`;
  const sizes = [sent ? `${formatBytes(sent.bytes)} sent` : undefined, `${limit}${limitBytes === undefined ? '' : ` is ${formatBytes(limitBytes)}`}`].filter(Boolean).join('; ');
  const annotations = /metadata\.annotations/.test(message);
  const hint = annotations
    ? 'client-side `kubectl apply` copies the whole object into the last-applied-configuration annotation: apply it server-side (`kubectl apply --server-side`; Argo CD: the ServerSideApply=true sync option; Flux does so already)'
    : sent?.kind === 'Release'
      ? 'stk stores a large release as chunk ConfigMaps of 512 KiB: write the Release with this stk (`stk apply`, or `stk apply --emit` for GitOps), not with an older one or by hand'
      : 'make the object smaller (split it into several objects); only a cluster you run yourself can raise the limit';
  return new ObjectTooLargeError(`${what} is too large for the cluster: ${sizes}`, { ...(sent?.kind ? { kind: sent.kind } : {}), ...(sent?.name ? { name: sent.name } : {}), ...(sent ? { sentBytes: sent.bytes } : {}), ...(limitBytes === undefined ? {} : { limitBytes }), limit }, { hint });
}

const TOTAL_TOO_LONG = /(?:\[\]|metadata\.annotations): Too long: (?:must have at most|may not be more than) (\d+) bytes/;

function numberAfter(text: string, pattern: RegExp): number | undefined {
  const m = pattern.exec(text);
  return m ? Number(m[1]) : undefined;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(2)} MiB (${bytes} bytes)`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB (${bytes} bytes)`;
  return `${bytes} bytes`;
}
