import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeconfig, eventually, freePort, stk, expectExit, type OperatorProcess } from '../support/cluster.ts';
import { call, createApiKey, createDataplaneProject, expectError, startBridge, startDataplaneOperator, waitBridgeReady, waitServable, type BridgeProcess, type DataplaneProject, notesApp } from './support.ts';

/**
 * Revocation fails closed: the data plane reaches the API server through a TCP proxy the test can
 * cut. While its key watch is broken for longer than --api-key-max-staleness, every key (even one
 * it verified a moment ago, even one revoked meanwhile) is refused with 503; once the watch is
 * back, the revocation made during the outage holds.
 */

const files = notesApp({ select: ['reader'] });

/** A TCP proxy to the API server that can be cut (every connection dropped, new ones refused) and restored. */
class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    this.server = net.createServer((inbound) => {
      const outbound = net.connect(this.target.port, this.target.host);
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => this.server!.once('error', reject).listen(this.port, '127.0.0.1', () => resolve()));
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

describe('revocation fails closed while the key watch is broken', () => {
  let operator: OperatorProcess;
  let bridge: BridgeProcess;
  let p: DataplaneProject;
  let proxy: CuttableProxy;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stk-revoke-'));

  beforeAll(async () => {
    const config = YAML.parse(fs.readFileSync(adminKubeconfig(), 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
    const server = new URL(config.clusters[0]!.cluster.server);
    proxy = new CuttableProxy(await freePort(), { host: server.hostname, port: Number(server.port) });
    await proxy.open();
    config.clusters[0]!.cluster.server = `https://${server.hostname}:${proxy.port}`;
    const kubeconfig = path.join(tmp, 'through-proxy.kubeconfig');
    fs.writeFileSync(kubeconfig, YAML.stringify(config), { mode: 0o600 });

    operator = await startDataplaneOperator('dp-revoke');
    bridge = await startBridge({ args: ['--api-key-max-staleness', '2'], env: { KUBECONFIG: kubeconfig } });
    p = await createDataplaneProject('dprevoke', ['dev']);
    await p.apply('dev', files);
    await waitBridgeReady(bridge);
  });

  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    await proxy?.cut();
    await operator?.stop();
    await p?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses every key with 503 beyond the bound; a key revoked during the outage stays refused afterwards', async () => {
    const revokedLater = await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    const kept = await createApiKey(p.project, 'dev', ['reader'], undefined, bridge);
    // Ready says nothing of a namespace created after the bridge started: wait until dev is served.
    await waitServable(bridge, kept.apiKey, 'db/notes/select');
    expect((await call(bridge, revokedLater.apiKey, 'db/notes/select')).status).toBe(200);
    expect((await call(bridge, kept.apiKey, 'db/notes/select')).status).toBe(200);

    await proxy.cut();
    // The revocation happens where the data plane cannot see it.
    expectExit(await stk(['apikey', 'revoke', '--project', p.project, '--env', 'dev', '--key-id', revokedLater.keyId]));
    const unseen = await createApiKey(p.project, 'dev', ['reader']);
    const refused = await eventually(
      async () => {
        const res = await call(bridge, kept.apiKey, 'db/notes/select');
        return res.status === 503 ? res : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the data plane to refuse keys while its key watch is broken' },
    );
    expectError(refused, 503, 'KeysStale');
    // The key verified (and cached) before the cut, and revoked since, is refused too; a key created meanwhile is unknown.
    expectError(await call(bridge, revokedLater.apiKey, 'db/notes/select'), 503, 'KeysStale');
    expect((await call(bridge, unseen.apiKey, 'db/notes/select')).status).not.toBe(200);

    await proxy.open();
    await eventually(async () => ((await call(bridge, kept.apiKey, 'db/notes/select')).status === 200 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'the data plane to serve again once its key watch is back',
    });
    expectError(await call(bridge, revokedLater.apiKey, 'db/notes/select'), 401, 'InvalidApiKey');
    expect((await call(bridge, unseen.apiKey, 'db/notes/select')).status).toBe(200);
  });
});
