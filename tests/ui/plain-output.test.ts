import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kinds } from '../../core/api/resources.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { adminClient, eventually, stk, expectExit, type RunResult } from '../support/cluster.ts';
import { createMasker, createUiWorld, permissions, schemaDropName, schemaV1, schemaV2, type UiWorld } from './world.ts';

/**
 * Golden plain output (no terminal): the lines CI logs and scripts read. Release ids, refs and the
 * project name are masked; nothing else may change between runs: no colour, spinners or times.
 */
describe('plain output off a terminal', () => {
  let w: UiWorld;
  let mask: (text: string) => string;
  /** What the v1 apply and the refused one printed, masked in that order (so the placeholders are the same whichever case runs). */
  let applied: RunResult;
  let refused: RunResult;
  const masked = new Map<RunResult, { stdout: string; stderr: string }>();
  const apply = (ref: string, ...more: string[]) => stk(['apply', ...w.inProject, '--env', 'dev', '--ref', ref, '--repo', w.repo.dir, ...more]);

  // The releases the cases read are made here, once, in one order: v1, v2 (served), then a
  // destructive one refused. Each case only reads, so any one runs alone.
  beforeAll(async () => {
    w = await createUiWorld('uiplain');
    mask = createMasker(w.project);
    const seen = (res: RunResult) => {
      masked.set(res, { stdout: mask(res.stdout), stderr: mask(res.stderr) });
      return res;
    };
    applied = seen(await apply(await w.repo.commit({ 'schema/app.yaml': schemaV1, 'config/permissions.yaml': permissions }, 'v1')));
    expectExit(applied);
    await nextSecond(w);
    // (not masked: the goldens name v2's release by where it first shows, in the refusal and the list)
    const v2 = await apply(await w.repo.commit({ 'schema/app.yaml': schemaV2, 'config/permissions.yaml': permissions }, 'v2'));
    expectExit(v2);
    await nextSecond(w);
    refused = seen(await apply(await w.repo.commit({ 'schema/app.yaml': schemaDropName, 'config/permissions.yaml': permissions }, 'drop name and age')));
  });
  afterAll(async () => {
    await w?.stop();
  });

  it('apply: the plan per connection, one line per pipeline step, then releaseId=', () => {
    expectExit(applied);
    expect(applied.stdout).not.toMatch(/\u001B\[/);
    expect.soft(masked.get(applied)!.stdout).toBe(GOLDEN_APPLY);
  });

  it('apply of a destructive plan without --force: refused, exit 2, the error names --force', () => {
    expectExit(refused, 2);
    expect.soft(masked.get(refused)!.stdout).toBe(GOLDEN_REFUSED_STDOUT);
    expect.soft(masked.get(refused)!.stderr).toBe(GOLDEN_REFUSED_STDERR);
  });

  it('release list: releases newest first with the envs serving each; an env history marks the current one', async () => {
    const list = await stk(['release', 'list', ...w.inProject]);
    expectExit(list);
    expect.soft(mask(list.stdout)).toBe(GOLDEN_LIST);
    const history = await stk(['release', 'list', ...w.inProject, '--env', 'dev']);
    expectExit(history);
    expect.soft(mask(history.stdout)).toBe(GOLDEN_HISTORY);
  });
});

/**
 * Release list sorts by creation time (whole seconds): the next release must be made in a later
 * second than the newest one, which is waited for on the clock rather than slept.
 */
async function nextSecond(w: UiWorld): Promise<void> {
  const { items } = await (await adminClient()).list<KubeObject>(Kinds.Release, { namespace: w.namespace });
  const newest = Math.max(...items.map((r) => Date.parse(String(r.metadata.creationTimestamp))));
  await eventually(async () => (Math.floor(Date.now() / 1000) * 1000 > newest ? true : undefined), { timeoutMs: 5_000, intervalMs: 50, what: 'a new second on the clock' });
}

const GOLDEN_APPLY = `release <rel1> (ref <ref1>) for <project>/dev
plan main: 1 step(s)
  connection main: 1 step, 0 destructive
    live schema <hash>
    plan <hash>
  1. create table users
     CREATE TABLE "public"."users" (
       "id" text NOT NULL,
       "email" text NOT NULL,
       "name" text,
       CONSTRAINT "users_pkey" PRIMARY KEY ("id"),
       CONSTRAINT "users_email_key" UNIQUE ("email")
     );
  mode: transactional — every step in one transaction; each lock is held until it commits; about 23 locks
plan main: succeeded: 1 step(s)
apply main: succeeded: 1 statement(s) in one transaction
drift: succeeded: databases match the release
permissions: succeeded: snapshot santokit-permissions-<rel1>
release: succeeded: apply: now serving <rel1>
connection main: at <rel1> (at the release)
releaseId=<rel1>
`;

const GOLDEN_REFUSED_STDOUT = `release <rel2> (ref <ref2>) for <project>/dev
plan main: 2 step(s)
  connection main: 2 steps, 2 destructive
    live schema <hash>
    plan <hash>
  1. drop column users.name  [destructive]
     ! deletes_data: drops column users.name and the data it holds
     ~ access_exclusive_lock: blocks every read and write of users while it runs (ACCESS EXCLUSIVE)
     ALTER TABLE "public"."users" DROP COLUMN "name";
  2. drop column users.age  [destructive]
     ! deletes_data: drops column users.age and the data it holds
     ~ access_exclusive_lock: blocks every read and write of users while it runs (ACCESS EXCLUSIVE)
     ALTER TABLE "public"."users" DROP COLUMN "age";
  blocked: steps 1, 2 need force or allowed hazards (deletes_data)
  mode: transactional — every step in one transaction; each lock is held until it commits; about 20 locks
plan main: succeeded: 2 step(s), destructive
plan: failed (DestructiveChange): 2 destructive step(s)
connection main: at <rel3> (not at the release yet)
`;

const GOLDEN_REFUSED_STDERR = `stk: apply of <rel2> failed (DestructiveChange): the plan has destructive steps; nothing was applied. Re-run with --force to apply them:
  - main: drop column users.name (deletes_data, access_exclusive_lock)
  - main: drop column users.age (deletes_data, access_exclusive_lock)
hint: pass --force to apply destructive steps (on a terminal stk shows them and asks first; --yes answers for you)
`;

// <rel2> is the refused release (newest, serving nothing), <rel3> the v2 release dev serves, <rel1> v1.
const GOLDEN_LIST = `RELEASE  REF  SERVING
<rel2>  <ref2>  -
<rel3>  <ref3>  dev
<rel1>  <ref1>  -
`;

const GOLDEN_HISTORY = `RELEASE  REF  ACTION  CURRENT
<rel3>  <ref3>  apply  *
<rel1>  <ref1>  apply
`;
