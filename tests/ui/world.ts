import { expect } from 'vitest';
import { startOperator, stk, uniqueName, waitForOperatorReady, type OperatorProcess, expectExit } from '../support/cluster.ts';
import { createTestRepo, type TestRepo } from '../support/git-repo.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
export { permissions, schemaDropName, schemaV1, schemaV2 } from '../support/fixtures.ts';

/** A project with dev and prod (one reachable `main` connection each), a Git repo and a running operator. */
export interface UiWorld {
  operator: OperatorProcess;
  project: string;
  namespace: string;
  repo: TestRepo;
  dbs: TestDatabase[];
  inProject: string[];
  stop(): Promise<void>;
}

export async function createUiWorld(prefix: string): Promise<UiWorld> {
  const operator = await startOperator({ leaseName: uniqueName(`lease-${prefix}`) });
  await waitForOperatorReady(operator);
  const project = uniqueName(prefix);
  const inProject = ['--project', project];
  const created = await stk(['project', 'create', project]);
  expectExit(created);
  const dbs: TestDatabase[] = [];
  for (const e of ['dev', 'prod']) {
    expectExit(await stk(['env', 'create', ...inProject, e]));
    const db = await createTestDatabase(`ui_${e}`);
    dbs.push(db);
    expectExit(await stk(['connections', 'set', ...inProject, '--env', e, '--name', 'main', '--db-url', db.url]));
    expectExit(await stk(['connections', 'test', ...inProject, '--env', e]));
  }
  const repo = await createTestRepo();
  return {
    operator,
    project,
    namespace: `stk-${project}`,
    repo,
    dbs,
    inProject,
    async stop() {
      await operator.stop();
      for (const db of dbs) await db.drop();
    },
  };
}

/**
 * Makes output comparable: release ids, Git refs, content hashes and the project name become
 * numbered placeholders in order of first appearance across one masker's life (so the same release
 * reads the same in every output of a test file); runs of spaces that align columns become two.
 */
export function createMasker(project: string): (text: string) => string {
  const names = new Map<string, string>();
  const counts = new Map<string, number>();
  const stand = (kind: string) => (m: string) => {
    if (!names.has(m)) {
      const n = (counts.get(kind) ?? 0) + 1;
      counts.set(kind, n);
      names.set(m, `<${kind}${n}>`);
    }
    return names.get(m)!;
  };
  return (text) =>
    text
      .replaceAll(project, '<project>')
      .replace(/\b[0-9a-f]{64}\b/g, '<hash>')
      .replace(/rel-[0-9a-f]{16}/g, stand('rel'))
      .replace(/\b[0-9a-f]{40}\b/g, (m) => stand('ref')(m.slice(0, 12)))
      .replace(/\b[0-9a-f]{12}\b/g, stand('ref'))
      .replace(/(\S) {2,}/g, '$1  ');
}
