import { afterEach, describe, expect, it } from 'vitest';
import { ANNOTATION_CREATE_PENDING, ANNOTATION_PROVIDER_ID } from '../../operator/infra/plan.ts';
import { bootstrapped, HOSTS_YAML, tableRows, World } from './world.ts';
import { expectExit } from '../support/cluster.ts';

const ONE_HOST = HOSTS_YAML.replace(/\n {4}db-1:.*\n/, '\n');

/** The cloud side: rate limits, a crash between create and record, and spec drift. */
describe('stk infra up: the cloud API', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('waits out a 429 on create and then creates the host once', async () => {
    // Given DigitalOcean answers the first create with 429 and retry-after: 1
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    await w.commitHosts(ONE_HOST);
    w.sim.fail({ method: 'POST', path: '/v2/droplets', status: 429, headers: { 'retry-after': '1' } });

    // When stk infra up runs
    const result = await w.infra(['up', '--env', 'staging']);

    // Then the create was sent again after the wait and one droplet exists
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(0);
    expect(w.sim.requestsTo('POST', '/v2/droplets').map((r) => r.status)).toEqual([429, 202]);
    expect(w.sim.droplets()).toHaveLength(1);
    expect(tableRows(result.stdout)[1]).toEqual(['app-1', String(w.sim.droplets()[0]?.id), w.hosts.get('staging/app-1')?.address, 'created', 'ok']);
  }, 120_000);

  it('adopts the droplet after the operator is killed right after the create call, without a duplicate', async () => {
    // Given droplets that stay `new` for a while, and an operator killed the moment its create is answered
    const w = (world = await World.start({ simulator: { activateAfterPolls: 2 } }));
    await w.host('staging', 'app-1');
    await w.commitHosts(ONE_HOST);
    const killed = new Promise<void>((resolve) => {
      w.sim.beforeReply({ method: 'POST', path: '/v2/droplets', status: 202 }, async () => {
        await w.stopOperator('SIGKILL');
        resolve();
      });
    });

    // When stk infra up runs, the operator dies after DigitalOcean created the droplet, and a new one starts
    const running = w.infra(['up', '--env', 'staging']);
    await killed;
    const orphaned = await w.infraHost('staging-app-1');
    await w.startOperator();
    const result = await running;

    // Then the create-pending marker was all the dead operator left, and the new one adopted the droplet
    expect(orphaned.metadata.annotations?.[ANNOTATION_CREATE_PENDING]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(orphaned.metadata.annotations?.[ANNOTATION_PROVIDER_ID]).toBeUndefined();
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(0);
    expect(w.sim.requestsTo('POST', '/v2/droplets')).toHaveLength(1);
    expect(w.sim.droplets()).toHaveLength(1);
    const id = String(w.sim.droplets()[0]?.id);
    const obj = await w.infraHost('staging-app-1');
    expect(obj.metadata.annotations?.[ANNOTATION_PROVIDER_ID]).toBe(id);
    expect(obj.metadata.annotations?.[ANNOTATION_CREATE_PENDING]).toBeUndefined();
    expect(tableRows(result.stdout)[1]).toEqual(['app-1', id, w.hosts.get('staging/app-1')?.address, 'created', 'ok']);
    expect(await w.events('staging-app-1')).toContain(`HostAdopted: found droplet ${id} (${w.project}-staging-app-1) by its ownership tag and recorded it`);
  }, 120_000);

  it('reports a size mismatch and resizes in place: shutdown, resize keeping the disk, power on', async () => {
    // Given a ready host of size s-2vcpu-4gb
    const w = (world = await World.start());
    const host = await w.host('staging', 'app-1');
    await w.commitHosts(ONE_HOST);
    expectExit(await w.infra(['up', '--env', 'staging']));
    await bootstrapped(host.sshd!);

    // When the file asks for s-4vcpu-8gb and stk infra up runs again
    await w.commitHosts(ONE_HOST.replace('app-1: { role: app }', 'app-1: { role: app, size: s-4vcpu-8gb }'));
    const result = await w.infra(['up', '--env', 'staging']);

    // Then the mismatch was reported, the droplet resized in place (no new droplet), and the run says reconciled
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(0);
    const id = String(w.sim.droplets()[0]?.id);
    expect(await w.events('staging-app-1')).toContain('DriftReconciling: size is s-2vcpu-4gb, resizing to s-4vcpu-8gb');
    expect(w.sim.requestsTo('POST', /\/actions$/).map((r) => r.body)).toEqual([{ type: 'shutdown' }, { type: 'resize', size: 's-4vcpu-8gb', disk: false }, { type: 'power_on' }]);
    expect(w.sim.requestsTo('POST', '/v2/droplets')).toHaveLength(1);
    expect(w.sim.droplets()).toEqual([expect.objectContaining({ id: Number(id), size_slug: 's-4vcpu-8gb', status: 'active', disk: 80 })]);
    expect(tableRows(result.stdout)[1]).toEqual(['app-1', id, w.hosts.get('staging/app-1')?.address, 'reconciled', 'ok']);
    const obj = await w.infraHost('staging-app-1');
    expect(obj.status?.conditions?.find((c) => c.type === 'Drifted')).toMatchObject({ status: 'False', reason: 'NoDrift' });
  }, 180_000);

  it('reports a region change as drift and does not replace the host', async () => {
    // Given a ready host in nyc1
    const w = (world = await World.start());
    const host = await w.host('staging', 'app-1');
    await w.commitHosts(ONE_HOST);
    expectExit(await w.infra(['up', '--env', 'staging']));
    await bootstrapped(host.sshd!);
    w.sim.clearRequests();

    // When the file moves it to ams3
    await w.commitHosts(ONE_HOST.replace('region: nyc1', 'region: ams3'));
    const result = await w.infra(['up', '--env', 'staging']);

    // Then the host stays as it is, ready, with Drifted=True naming the difference
    expect(result.code, `${result.stderr}\n${w.operatorLogs()}`).toBe(0);
    expect(result.stderr).toContain('stk: app-1: drift: region is nyc1, the spec says ams3; moving a host needs a new host');
    expect(tableRows(result.stdout)[1]?.slice(3)).toEqual(['unchanged', 'ok']);
    expect(w.sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    const obj = await w.infraHost('staging-app-1');
    expect(obj.status?.drift).toEqual(['region is nyc1, the spec says ams3; moving a host needs a new host']);
    expect(obj.status?.conditions?.find((c) => c.type === 'Drifted')).toMatchObject({ status: 'True', reason: 'DriftReported' });
    expect(obj.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  }, 180_000);
});
