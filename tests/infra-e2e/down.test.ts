import { afterEach, describe, expect, it } from 'vitest';
import { formatTable } from '../../cli/output.ts';
import { HOSTS_YAML, tableRows, World, type Obj } from './world.ts';
import { expectExit } from '../support/cluster.ts';

/** Polls `check` until it holds (deadline 30 s). */
async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met within the deadline');
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ONE_HOST = HOSTS_YAML.replace(/\n {4}db-1:.*\n/, '\n');

/** Removing hosts: `stk infra down`, `--prune`, and the droplets Santokit must never touch. */
describe('stk infra down', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it("deletes by id, releases the finalizer only after the 404, and never touches another env's droplets or a same-named one", async () => {
    // Given another environment's droplet, our ready host, and then an untagged droplet given the very same name
    const w = (world = await World.start());
    const prod = w.sim.seedDroplet({ name: `${w.project}-prod-app-1`, tags: ['santokit', 'santokit-env-prod', 'santokit-owner-99999999-0000-4000-8000-000000000001'] });
    await w.host('staging', 'app-1');
    await w.commitHosts(ONE_HOST);
    const up = await w.infra(['up', '--env', 'staging']);
    expect(up.code, `${up.stderr}\n${w.operatorLogs()}`).toBe(0);
    const id = (await w.infraHost('staging-app-1')).status?.providerId ?? '';
    const sameName = w.sim.seedDroplet({ name: `${w.project}-staging-app-1`, tags: ['santokit', 'santokit-env-staging'] });
    expect(id).not.toBe(String(sameName.id));
    let atTheFirst404: Obj | undefined | 'not seen' = 'not seen';
    w.sim.beforeReply({ method: 'GET', path: `/v2/droplets/${id}`, status: 404 }, async () => {
      atTheFirst404 = await w.findInfraHost('staging-app-1');
    });

    // When stk infra down runs
    const down = await w.infra(['down', '--env', 'staging']);

    // Then the droplet was deleted by id, and while the provider answered 404 the finalizer was still holding
    expect(down.code, `${down.stderr}\n${w.operatorLogs()}`).toBe(0);
    expect(down.stdout).toBe(`${formatTable(['HOST', 'DROPLET', 'RESULT'], [['app-1', id, 'deleted']])}\n`);
    expect(w.sim.requestsTo('DELETE', /^\/v2\/droplets/).map((r) => `${r.path}${r.search}`)).toEqual([`/v2/droplets/${id}`]);
    const held = atTheFirst404 as Obj | undefined | 'not seen';
    expect(held).not.toBe('not seen');
    expect(held === 'not seen' ? undefined : held?.metadata.finalizers).toEqual(['santokit.io/infrahost']);
    expect(await w.findInfraHost('staging-app-1')).toBeUndefined();
    expect(w.sim.droplet(id)).toBeUndefined();

    // And the other droplets were only ever read: still there, tags as they were
    const touching = w.sim.requests.filter((r) => r.method !== 'GET' && [String(prod.id), String(sameName.id)].some((other) => r.path.includes(other) || JSON.stringify(r.body ?? {}).includes(other)));
    expect(touching).toEqual([]);
    expect(w.sim.droplet(prod.id)?.tags).toEqual(prod.tags);
    expect(w.sim.droplet(sameName.id)?.tags).toEqual(sameName.tags);
  }, 180_000);

  it('leaves a host missing from the file alone unless --prune is given', async () => {
    // Given two ready hosts
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    await w.host('staging', 'db-1');
    await w.commitHosts(HOSTS_YAML);
    expectExit(await w.infra(['up', '--env', 'staging']));
    const dbId = (await w.infraHost('staging-db-1')).status?.providerId ?? '';

    // When db-1 leaves the file and stk infra up runs without --prune
    await w.commitHosts(ONE_HOST);
    const kept = await w.infra(['up', '--env', 'staging']);

    // Then db-1 is untouched and the user is told how to remove it
    expectExit(kept);
    expect(kept.stderr).toContain('stk: staging/db-1 is not in infra/hosts.yaml at HEAD; left in place (pass --prune to delete it)');
    expect(tableRows(kept.stdout).map((r) => r[0])).toEqual(['HOST', 'app-1']);
    expect(await w.findInfraHost('staging-db-1')).toBeDefined();
    expect(w.sim.requestsTo('DELETE', /^\/v2\/droplets/)).toEqual([]);

    // When it runs with --prune
    const pruned = await w.infra(['up', '--env', 'staging', '--prune']);

    // Then db-1 and its droplet are gone
    expect(pruned.code, `${pruned.stderr}\n${w.operatorLogs()}`).toBe(0);
    expect(pruned.stdout).toContain('pruned staging/db-1: deleted');
    expect(await w.findInfraHost('staging-db-1')).toBeUndefined();
    expect(w.sim.droplet(dbId)).toBeUndefined();
    expect(w.sim.requestsTo('DELETE', /^\/v2\/droplets/).map((r) => r.path)).toEqual([`/v2/droplets/${dbId}`]);
  }, 180_000);

  it('refuses a droplet that already has the name (exit 3, an Event names it), and deleting that stalled host exits 0', async () => {
    // Given an untagged droplet that already has the name our host would get
    const w = (world = await World.start());
    const taken = w.sim.seedDroplet({ name: `${w.project}-staging-app-1`, tags: ['web'] });
    await w.commitHosts(ONE_HOST);

    // When stk infra up runs
    const up = await w.infra(['up', '--env', 'staging']);

    // Then nothing is created, the host is Stalled with NameTaken, and an Event names the droplet
    expectExit(up, 3);
    expect(up.stderr).toContain(`NameTaken: droplet ${taken.id} is already named ${w.project}-staging-app-1`);
    expect(w.createRequests()).toEqual([]);
    const stalled = await w.infraHost('staging-app-1');
    expect(stalled.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'NameTaken' });
    expect(await w.events('staging-app-1')).toContainEqual(expect.stringMatching(new RegExp(`^NameTaken: droplet ${taken.id} is already named`)));

    // When stk infra down starts while the operator is away (so it sees the leftover Stalled first), and the operator comes back
    await w.stopOperator();
    const down = w.infra(['down', '--env', 'staging']);
    await waitFor(async () => (await w.infraHost('staging-app-1')).metadata.deletionTimestamp !== undefined);
    await w.startOperator();

    // Then the deletion succeeded: exit 0, the resource is gone, and the other droplet was never touched
    const done = await down;
    expectExit(done);
    expect(tableRows(done.stdout)[1]).toEqual(['app-1', '-', 'removed (no droplet)']);
    expect(await w.findInfraHost('staging-app-1')).toBeUndefined();
    expect(w.sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(w.sim.droplet(taken.id)?.tags).toEqual(['web']);
  }, 180_000);

  it('leaves the droplet running with deletionPolicy: Orphan', async () => {
    // Given a host with deletionPolicy Orphan
    const w = (world = await World.start());
    await w.host('staging', 'app-1');
    await w.commitHosts(ONE_HOST.replace('app-1: { role: app }', 'app-1: { role: app, deletionPolicy: Orphan }'));
    expectExit(await w.infra(['up', '--env', 'staging']));
    const id = (await w.infraHost('staging-app-1')).status?.providerId ?? '';

    // When stk infra down runs
    const down = await w.infra(['down', '--env', 'staging', '--host', 'app-1']);

    // Then the resource is gone and the droplet is not
    expectExit(down);
    expect(tableRows(down.stdout)[1]).toEqual(['app-1', id, 'orphaned (droplet left running)']);
    expect(await w.findInfraHost('staging-app-1')).toBeUndefined();
    expect(w.sim.droplet(id)?.status).toBe('active');
    expect(w.sim.requestsTo('DELETE', /^\/v2\/droplets/)).toEqual([]);
  }, 120_000);
});
