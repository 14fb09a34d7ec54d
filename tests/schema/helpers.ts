import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import type postgres from 'postgres';
import {
  applyPlan,
  declareSchema,
  parseSchemaFiles,
  planLiveSchemaChanges,
  schemaOf,
  type ApplyOptions,
  type HazardKind,
  type SchemaIR,
  type SchemaPlan,
} from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const run = promisify(execFile);

/** Declares one YAML text (or several files) and returns the IR of one connection (default main). */
export function declare(files: string | Record<string, string>, connection = 'main'): SchemaIR {
  const list = typeof files === 'string' ? [{ path: 'schema/test.yaml', text: files }] : Object.entries(files).map(([path, text]) => ({ path, text }));
  return declareSchema(parseSchemaFiles(list))[connection] ?? schemaOf([]);
}

/** `version: 1` + tables, so test YAML stays short. */
export function yaml(tables: string): string {
  return `version: 1\ntables:\n${tables.replace(/^\n/, '')}`;
}

export async function planFor(sql: postgres.Sql, declared: SchemaIR, options: { previous?: SchemaIR | null; allowHazards?: HazardKind[]; connection?: string } = {}): Promise<SchemaPlan> {
  return planLiveSchemaChanges(sql, { declared, previous: options.previous ?? null, allowHazards: options.allowHazards ?? [], connection: options.connection ?? 'main' });
}

/** Plans and applies in one go (the way a fresh database is built from a declaration). */
export async function converge(sql: postgres.Sql, declared: SchemaIR, options: Partial<ApplyOptions> & { previous?: SchemaIR | null } = {}): Promise<SchemaPlan> {
  const plan = await planFor(sql, declared, { previous: options.previous ?? null });
  await applyPlan(sql, plan, { releaseId: 'test-release', lockTimeoutMs: 2_000, statementTimeoutMs: 10_000, ...options });
  return plan;
}

/** The plan without its header (hashes): the numbered steps, hazards and SQL. */
export function stepsText(rendered: string): string {
  return rendered.split('\n').slice(4).join('\n');
}

/** pg_dump of the server's version: SANTOKIT_PG_BIN_DIR (as hack/cluster.sh), pg_config, Debian's folder, PATH. */
function pgDumpPath(): string {
  const candidates: string[] = [];
  if (process.env.SANTOKIT_PG_BIN_DIR) candidates.push(process.env.SANTOKIT_PG_BIN_DIR);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // no pg_config on PATH
  }
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  }
  for (const dir of candidates) if (existsSync(`${dir}/pg_dump`)) return `${dir}/pg_dump`;
  return 'pg_dump';
}

/** `pg_dump --schema-only` without the bookkeeping schema, owners, grants or per-run tokens. */
export async function dumpSchema(url: string): Promise<string> {
  const { stdout } = await run(pgDumpPath(), ['--schema-only', '--no-owner', '--no-privileges', '--exclude-schema=santokit', '--dbname', url], { maxBuffer: 64 * 1024 * 1024 });
  // pg_dump ≥ 15.14 brackets its output with \restrict <random key>; the key differs per run.
  return stdout
    .split('\n')
    .filter((l) => !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'))
    .join('\n');
}

/**
 * The oracle: a database brought from an old state to `declared` by the plan dumps exactly like a
 * fresh database built straight from `declared`, and planning again yields no steps.
 */
export async function expectOracle(db: TestDatabase, declared: SchemaIR, previous: SchemaIR | null = null): Promise<{ migrated: string; fresh: string; replan: SchemaPlan }> {
  const fresh = await createTestDatabase('oracle');
  try {
    await converge(fresh.sql, declared);
    const [migrated, freshDump] = await Promise.all([dumpSchema(db.url), dumpSchema(fresh.url)]);
    const replan = await planFor(db.sql, declared, { previous });
    return { migrated, fresh: freshDump, replan };
  } finally {
    await fresh.drop();
  }
}

/** Everything in the database that a schema change could touch, for "nothing changed" checks. */
export async function snapshot(db: TestDatabase): Promise<string> {
  const [dump, releases] = await Promise.all([
    dumpSchema(db.url),
    db.sql`SELECT count(*)::int AS n FROM pg_catalog.pg_namespace WHERE nspname = 'santokit'`.then(async ([r]) =>
      r?.n === 1 ? db.sql`SELECT release_id, plan_hash FROM santokit.applied_releases ORDER BY id` : [],
    ),
  ]);
  return `${dump}\n-- releases: ${JSON.stringify(releases)}`;
}
