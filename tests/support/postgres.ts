import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

/**
 * Throwaway databases for integration tests: one uniquely named database per test, on the server
 * named by SANTOKIT_PG_ADMIN_URL (a role that may CREATE DATABASE), dropped WITH (FORCE) after.
 */

export interface TestDatabase {
  /** connection URL of the new database */
  readonly url: string;
  readonly name: string;
  /** a client of the new database; `drop()` ends it */
  readonly sql: postgres.Sql;
  drop(): Promise<void>;
}

export function adminUrl(): string {
  const url = process.env.SANTOKIT_PG_ADMIN_URL;
  if (url === undefined || url === '') {
    throw new Error(
      'SANTOKIT_PG_ADMIN_URL is not set: integration tests need a Postgres server they may create databases on, ' +
        'e.g. SANTOKIT_PG_ADMIN_URL=postgres://postgres@127.0.0.1:55432/postgres',
    );
  }
  return url;
}

const quiet = { onnotice: () => {} };

async function withAdmin<T>(run: (admin: postgres.Sql) => Promise<T>): Promise<T> {
  const admin = postgres(adminUrl(), { max: 1, ...quiet });
  try {
    return await run(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** Creates an empty database `<prefix>_<random>`; call `drop()` when done (e.g. in afterEach). */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const base = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 40) || 'test';
  const name = `${base}_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.unsafe(`CREATE DATABASE "${name}" TEMPLATE template0`));
  const target = new URL(adminUrl());
  target.pathname = `/${name}`;
  const url = target.toString();
  const sql = postgres(url, { max: 4, ...quiet });
  let dropped = false;
  return {
    url,
    name,
    sql,
    async drop() {
      if (dropped) return;
      dropped = true;
      await sql.end({ timeout: 5 });
      await withAdmin((admin) => admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
