import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../support/cluster.ts';

const run = promisify(execFile);

/**
 * A throwaway Postgres server with the default configuration (max_locks_per_transaction 64,
 * max_connections 100, max_prepared_transactions 0), for the tests whose subject is a default
 * server's limits. Only durability is switched off, to keep it quick. Uses the same server
 * binaries as hack/cluster.sh (SANTOKIT_PG_BIN_DIR, else the newest /usr/lib/postgresql/<major>/bin).
 */
export interface DefaultPostgres {
  readonly url: string;
  stop(): Promise<void>;
}

function pgBinDir(): string {
  const given = process.env.SANTOKIT_PG_BIN_DIR;
  if (given) return given;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => existsSync(path.join(root, d, 'bin', 'initdb'))) : [];
  const newest = majors.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!newest) throw new Error('Postgres server binaries not found: set SANTOKIT_PG_BIN_DIR (hack/setup.sh installs them)');
  return path.join(root, newest, 'bin');
}

export async function startDefaultPostgres(): Promise<DefaultPostgres> {
  const bin = pgBinDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'stk-default-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  // initdb refuses to run as root: as root the server runs as `postgres`, as in hack/cluster.sh.
  const asOwner = (cmd: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { cwd: '/' }) : run(path.join(bin, cmd), args, { cwd: '/' }));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await asOwner('initdb', ['--pgdata', data, '--username', 'postgres', '--auth', 'trust', '--encoding', 'UTF8', '--locale', 'C', '--no-sync']);
  const port = await freePort();
  await asOwner('pg_ctl', ['--pgdata', data, '--log', path.join(dir, 'log'), '--wait', '--silent', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`, 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await asOwner('pg_ctl', ['--pgdata', data, '--wait', '--silent', '--mode', 'immediate', 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
