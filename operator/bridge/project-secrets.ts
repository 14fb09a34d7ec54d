import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Kinds, type Project } from '../../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { Informer } from '../../core/kube/informer.ts';

/**
 * Label-selected Secrets of every project namespace, for the data plane (API keys, data-plane
 * database credentials) and for the operator (the metadata of the Secrets InfraHosts name). There is no cluster-wide Secret watch: the data plane may read Secrets
 * only in project namespaces, through the RoleBinding the operator creates with each Project, so
 * one informer runs per project namespace, started once the operator has reconciled its Project
 * (`status.namespace` is written after the namespace and its RoleBindings) and stopped when the
 * Project goes. A namespace whose RoleBinding is missing keeps retrying with backoff.
 *
 * Readiness: `synced` once the Projects are listed and every namespace known at that moment has
 * been listed once. Namespaces of Projects created later do not make the data plane unready (that
 * would take every replica out of service at once); until they are listed, `pending` says so.
 *
 * Events: `upsert(secret)`, `delete(secret)`, as an Informer's.
 */

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export interface ProjectSecretsOptions {
  /** only Secrets with these labels; every Secret of the namespace when absent */
  readonly labelSelector?: string;
  /** what the cache keeps of each Secret (e.g. only its metadata) */
  readonly transform?: (obj: KubeObject) => KubeObject;
  /** list and watch metadata only: the values never reach this process */
  readonly metadataOnly?: boolean;
  readonly resyncMs: number;
  /** a watch without any event or bookmark this long is restarted (a hung connection) */
  readonly stallAfterMs?: number;
}

export class ProjectSecrets extends EventEmitter {
  private readonly byNamespace = new Map<string, Informer<SecretObject>>();
  /** project name → namespace */
  private readonly projectNamespaces = new Map<string, string>();
  private initial: Set<string> | undefined;
  private started = false;

  constructor(
    private readonly client: KubeClient,
    private readonly projects: Informer<Project & KubeObject>,
    private readonly log: Logger,
    private readonly options: ProjectSecretsOptions,
  ) {
    super();
    projects.on('upsert', (p: Project & KubeObject) => this.onProject(p));
    projects.on('delete', (p: Project & KubeObject) => this.onProjectGone(p));
    projects.on('synced', () => (this.initial ??= new Set(this.byNamespace.keys())));
  }

  /** Starts the informers of the namespaces known so far (later ones start as their Projects arrive). */
  start(): void {
    this.started = true;
    for (const inf of this.byNamespace.values()) inf.start();
  }

  stop(): void {
    this.started = false;
    for (const inf of this.byNamespace.values()) inf.stop();
  }

  private onProject(project: Project & KubeObject): void {
    const namespace = project.status?.namespace;
    if (!namespace) return;
    const before = this.projectNamespaces.get(project.metadata.name);
    if (before === namespace) return;
    if (before) this.dropNamespace(before);
    this.projectNamespaces.set(project.metadata.name, namespace);
    if (this.byNamespace.has(namespace)) return;
    const inf = new Informer<SecretObject>(this.client, Kinds.Secret, this.log.child({ namespace }), {
      namespace,
      ...(this.options.labelSelector === undefined ? {} : { labelSelector: this.options.labelSelector }),
      ...(this.options.transform === undefined ? {} : { transform: this.options.transform }),
      ...(this.options.metadataOnly ? { metadataOnly: true } : {}),
      resyncMs: this.options.resyncMs,
      // The API server closes each watch within a minute and the informer resumes it, so a
      // watch that says nothing for longer is hung: noticed (and counted as failing) quickly.
      watchTimeoutSeconds: 50,
      stallAfterMs: this.options.stallAfterMs ?? 90_000,
    });
    inf.on('upsert', (s: SecretObject) => this.emit('upsert', s));
    inf.on('delete', (s: SecretObject) => this.emit('delete', s));
    inf.on('error', (err: unknown) => this.log.debug({ err, namespace }, 'secret watch interrupted; resuming'));
    this.byNamespace.set(namespace, inf);
    if (this.started) inf.start();
  }

  private onProjectGone(project: Project & KubeObject): void {
    const namespace = this.projectNamespaces.get(project.metadata.name);
    this.projectNamespaces.delete(project.metadata.name);
    if (namespace && ![...this.projectNamespaces.values()].includes(namespace)) this.dropNamespace(namespace);
  }

  private dropNamespace(namespace: string): void {
    const inf = this.byNamespace.get(namespace);
    if (!inf) return;
    inf.stop();
    this.byNamespace.delete(namespace);
    for (const s of inf.list()) this.emit('delete', s);
  }

  /** The cached Secret `name` of `namespace`. */
  get(namespace: string, name: string): SecretObject | undefined {
    return this.byNamespace.get(namespace)?.get(`${namespace}/${name}`);
  }

  /** True once the Projects and the namespaces known at start are listed. */
  get synced(): boolean {
    if (!this.projects.synced || !this.initial) return false;
    for (const ns of this.initial) {
      const inf = this.byNamespace.get(ns);
      if (inf && !inf.synced) return false;
    }
    return true;
  }

  /** Project namespaces whose Secrets are not listed yet. */
  get pending(): string[] {
    return [...this.byNamespace].filter(([, inf]) => !inf.synced).map(([ns]) => ns);
  }

  /**
   * How long (ms) the Secrets of `namespace` have not been kept current: 0 while the watch works,
   * Infinity for a namespace that is not a project namespace or not listed yet.
   */
  staleFor(namespace: string, now = Date.now()): number {
    const inf = this.byNamespace.get(namespace);
    if (!inf?.synced) return Infinity;
    const since = inf.failingSince;
    return since === undefined ? 0 : now - since;
  }
}
