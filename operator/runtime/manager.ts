import http from 'node:http';
import type { Logger } from 'pino';
import type { KindInfo } from '../../core/api/resources.ts';
import type { KubeClient, KubeObject } from '../../core/kube/client.ts';
import { Informer, objectKey } from '../../core/kube/informer.ts';
import { Controller, type Reconciler, type WatchMapping } from './controller.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader.ts';
import { OperatorMetrics, registerInformerCacheGauge } from './metrics.ts';

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  /** host:port for /healthz, /readyz and /metrics */
  probeAddress: { host: string; port: number };
  leaderElection: LeaderElectionOptions | undefined;
  shutdownTimeoutMs: number;
  resyncMs: number;
  /**
   * Kinds whose shared informer caches metadata only (PartialObjectMetadata): every consumer of
   * it maps keys or reads metadata, and a reconciler GETs the object it works on anyway.
   */
  metadataOnly?: readonly KindInfo[];
}

/**
 * Owns the lifecycle, as controller-runtime's manager does: informers (one per kind, shared by
 * controllers) and probes run on every replica; controllers run only on the leader; losing the
 * lease exits the process; shutdown stops watches, drains in-flight reconciles, releases the
 * lease and runs registered closers (database pools) within a deadline.
 */
export class Manager {
  readonly metrics = new OperatorMetrics();
  private readonly informers = new Map<string, Informer>();
  private readonly controllers: Controller[] = [];
  private readonly closers: Array<{ name: string; close: () => Promise<void> }> = [];
  private readonly elector: LeaderElector | undefined;
  private server: http.Server | undefined;
  private leading = false;
  private shuttingDown: Promise<void> | undefined;
  /** resolves when the manager has stopped; the exit code says why */
  readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;

  constructor(private readonly options: ManagerOptions) {
    registerInformerCacheGauge(this.metrics.registry, () => this.informers.values());
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (options.leaderElection) this.elector = new LeaderElector(options.client, options.log.child({ component: 'leader-election' }), options.leaderElection);
  }

  get client(): KubeClient {
    return this.options.client;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The shared informer of a kind (created on first use); metadata only for the kinds in `metadataOnly`. */
  informer<T extends KubeObject = KubeObject>(kind: KindInfo): Informer<T> {
    const id = `${kind.group}/${kind.plural}`;
    let inf = this.informers.get(id);
    if (!inf) {
      const metadataOnly = (this.options.metadataOnly ?? []).some((k) => k.group === kind.group && k.plural === kind.plural);
      inf = new Informer(this.options.client, kind, this.options.log.child({ informer: kind.plural }), { resyncMs: this.options.resyncMs, metadataOnly });
      inf.on('error', (err) => this.options.log.debug({ err, kind: kind.kind }, 'watch interrupted; resuming'));
      inf.on('relist', () => this.metrics.informerRelists.inc({ kind: kind.kind }));
      inf.on('watchRestart', (reason: string) => this.metrics.informerWatchRestarts.inc({ kind: kind.kind, reason }));
      this.informers.set(id, inf);
    }
    return inf as unknown as Informer<T>;
  }

  /** Registers a reconciler for its kind plus secondary watches that map to its keys. */
  addController(reconciler: Reconciler, options: { watches?: WatchMapping[]; concurrency?: number } = {}): Controller {
    const controller = new Controller(reconciler, this.options.log, this.metrics, options.concurrency ?? 2);
    const primary = this.informer(reconciler.kind);
    const enqueue = (obj: KubeObject) => controller.enqueue(objectKey(obj));
    primary.on('upsert', enqueue);
    primary.on('delete', enqueue);
    for (const w of options.watches ?? []) {
      const handler = (obj: KubeObject) => w.map(obj).forEach((k) => controller.enqueue(k));
      this.informer(w.kind).on('upsert', handler);
      this.informer(w.kind).on('delete', handler);
    }
    this.controllers.push(controller);
    return controller;
  }

  /** Something to close on shutdown (a database pool, a server). */
  onShutdown(name: string, close: () => Promise<void>): void {
    this.closers.push({ name, close });
  }

  async start(): Promise<void> {
    await this.startProbes();
    for (const inf of this.informers.values()) inf.start();
    if (this.elector) {
      this.elector.on('started', () => this.startLeading());
      this.elector.on('stopped', () => {
        this.options.log.error('leadership lost; exiting so a fresh process can campaign again');
        void this.shutdown(1);
      });
      this.elector.start();
    } else {
      this.startLeading();
    }
  }

  private startLeading(): void {
    this.leading = true;
    this.metrics.leader.set(1);
    for (const c of this.controllers) c.start();
    // The informers may have synced before we led: enqueue everything once.
    for (const c of this.controllers) {
      for (const obj of this.informer(c.reconciler.kind).list()) c.enqueue(objectKey(obj));
    }
  }

  get ready(): { ok: boolean; why: string[] } {
    const why: string[] = [];
    for (const inf of this.informers.values()) if (!inf.synced) why.push(`informer ${inf.kind.plural} not synced`);
    if (this.elector && !this.elector.stateKnown) why.push('leader election state unknown');
    return { ok: why.length === 0 && !this.shuttingDown, why };
  }

  private startProbes(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else if (url === '/readyz') {
        const { ok, why } = this.ready;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : why.join('\n'));
      } else if (url === '/metrics') {
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else {
        res.writeHead(404).end();
      }
    });
    const { host, port } = this.options.probeAddress;
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
  }

  /** The bound probe port (useful when configured as 0). */
  get probePort(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  /** Graceful shutdown within the deadline; resolves `done` with the exit code. */
  shutdown(exitCode = 0): Promise<void> {
    this.shuttingDown ??= this.doShutdown(exitCode);
    return this.shuttingDown;
  }

  private async doShutdown(exitCode: number): Promise<void> {
    const log = this.options.log;
    log.info('shutting down');
    const work = (async () => {
      for (const inf of this.informers.values()) inf.stop();
      await Promise.all(this.controllers.map((c) => c.stop()));
      await this.elector?.stop();
      for (const c of this.closers) {
        try {
          await c.close();
        } catch (err) {
          log.warn({ err, closer: c.name }, 'close failed');
        }
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.options.shutdownTimeoutMs)));
    const outcome = await Promise.race([work.then(() => 'ok' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') log.error({ timeoutMs: this.options.shutdownTimeoutMs }, 'shutdown deadline passed; exiting with work in flight');
    this.metrics.leader.set(0);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.resolveDone(outcome === 'timeout' ? 1 : exitCode);
  }
}
