import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';

/** A real Git repository made by a test: each `commit` writes files (null deletes) and returns the SHA. */
export interface TestRepo {
  readonly dir: string;
  readonly git: SimpleGit;
  commit(files: Record<string, string | null>, message?: string): Promise<string>;
  /** writes files without committing (the working tree must never be what is released) */
  write(files: Record<string, string>): void;
}

export async function createTestRepo(prefix = 'stk-repo'): Promise<TestRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const git = simpleGit({ baseDir: dir });
  await git.init(['--initial-branch=main']);
  await git.addConfig('user.email', 'test@santokit.io');
  await git.addConfig('user.name', 'Santokit Test');
  const write = (files: Record<string, string | null>) => {
    for (const [rel, text] of Object.entries(files)) {
      const file = path.join(dir, rel);
      if (text === null) {
        fs.rmSync(file, { force: true });
        continue;
      }
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
  };
  return {
    dir,
    git,
    write,
    async commit(files, message = 'change') {
      write(files);
      await git.add(['-A']);
      await git.commit(message, undefined, { '--allow-empty': null });
      return (await git.revparse(['HEAD'])).trim();
    },
  };
}
