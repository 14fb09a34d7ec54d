import { readFileSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import { applyPlan, checkDrift, declareSchema, listAppliedReleases, parseSchemaFiles, renderPlan, type SchemaIR } from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { dumpSchema, expectOracle, planFor } from './helpers.ts';

const exampleDir = new URL('../../config/schema/', import.meta.url);

function exampleSchema(): Record<string, SchemaIR> {
  const files = readdirSync(exampleDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => ({ path: `config/schema/${f}`, text: readFileSync(new URL(f, exampleDir), 'utf8') }));
  return declareSchema(parseSchemaFiles(files));
}

describe('the config/ example schema on empty databases', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  test('declares two connections, main and analytics', () => {
    const declared = exampleSchema();
    expect(Object.keys(declared)).toEqual(['analytics', 'main']);
    expect(Object.keys(declared.main?.tables ?? {})).toEqual(['comments', 'post_tags', 'posts', 'profiles', 'tags', 'users']);
    expect(Object.keys(declared.analytics?.tables ?? {})).toEqual(['page_views']);
  });

  test.each(['main', 'analytics'])('connection %s: a plan of creates applies, re-plans empty, has no drift', async (connection) => {
    // Given an empty database and the example declaration of this connection
    const declared = exampleSchema()[connection] as SchemaIR;
    const db = await createTestDatabase(`example_${connection}`);
    dbs.push(db);

    // When it is planned (twice: the text is byte-identical)
    const plan = await planFor(db.sql, declared, { connection });
    expect(renderPlan(await planFor(db.sql, declared, { connection }))).toBe(renderPlan(plan));

    // Then the plan only creates: tables, then their indexes, then foreign keys; nothing is destructive
    const kinds = new Set(plan.steps.map((s) => s.change.kind));
    expect([...kinds].every((k) => k === 'create_table' || k === 'create_index' || k === 'add_foreign_key')).toBe(true);
    expect(plan.steps.filter((s) => s.change.kind === 'create_table').map((s) => s.change.table)).toEqual(Object.keys(declared.tables));
    expect(plan.steps.some((s) => s.destructive || s.hazards.length > 0)).toBe(false);
    expect(renderPlan(plan)).toContain(`connection ${connection}: ${plan.steps.length} steps, 0 destructive`);

    // When it is applied
    const result = await applyPlan(db.sql, plan, { releaseId: 'rel-example', ref: 'abc1234' });
    expect(result.statements).toHaveLength(plan.steps.length);

    // Then planning again gives no steps, there is no drift, and the release is recorded
    const again = await planFor(db.sql, declared, { connection });
    expect(again.steps).toEqual([]);
    expect(renderPlan(again)).toMatch(new RegExp(`^connection ${connection}: no changes\\n`));
    const drift = await checkDrift(db.sql, declared);
    expect(drift.differences).toEqual([]);
    expect(drift.unmanagedTables).toEqual([]);
    const releases = await listAppliedReleases(db.sql);
    expect(releases.map((r) => [r.connection, r.releaseId, r.ref, r.planHash])).toEqual([[connection, 'rel-example', 'abc1234', plan.hash]]);
    expect(releases[0]?.statements).toEqual(plan.steps.map((s) => s.sql));
  });

  test('applying the example twice from scratch gives identical dumps', async () => {
    // Given the main schema applied to one database
    const declared = exampleSchema().main as SchemaIR;
    const db = await createTestDatabase('example_oracle');
    dbs.push(db);
    const plan = await planFor(db.sql, declared);
    await applyPlan(db.sql, plan, { releaseId: 'rel-1' });

    // Then it dumps like any other database built from the same declaration, and re-plans empty
    const { migrated, fresh, replan } = await expectOracle(db, declared);
    expect(migrated).toBe(fresh);
    expect(migrated).toContain('CREATE TABLE public.users');
    expect(replan.steps).toEqual([]);
    expect(await dumpSchema(db.url)).not.toContain('santokit');
  });
});
