import { afterEach, describe, expect, test } from 'vitest';
import { applyPlan, checkDrift, declareSchema, DestructiveChangeError, introspectSchema, listAppliedReleases, parseSchemaFiles, type SchemaIR } from '../../core/schema/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { planFor, snapshot } from './helpers.ts';

const mainFile = `version: 1
tables:
  users:
    columns:
      email: { type: string, nullable: false, unique: true }
  orders:
    id: { generate: auto_increment }
    columns:
      user_id: { type: string, nullable: false, references: { table: users } }
`;

const analyticsFile = (extraColumn: string): string => `version: 1
tables:
  events:
    connection: analytics
    id: { generate: uuid_v7 }
    columns:
      name: { type: string, nullable: false }
      user_id: { type: string }
${extraColumn}`;

function declared(analyticsExtra: string, mainText = mainFile): Record<string, SchemaIR> {
  return declareSchema(
    parseSchemaFiles([
      { path: 'schema/main.yaml', text: mainText },
      { path: 'schema/analytics.yaml', text: analyticsFile(analyticsExtra) },
    ]),
  );
}

describe('two connections', { timeout: 60_000 }, () => {
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map((db) => db.drop()));
  });

  test('are planned and applied independently, each to its own database', async () => {
    // Given two databases and a declaration with tables in both connections
    const main = await createTestDatabase('conn_main');
    const analytics = await createTestDatabase('conn_analytics');
    dbs.push(main, analytics);
    const v1 = declared('      payload: { type: json }\n');
    expect(Object.keys(v1)).toEqual(['analytics', 'main']);

    // When each connection is planned against its database and applied
    const mainPlan = await planFor(main.sql, v1.main as SchemaIR, { connection: 'main' });
    const analyticsPlan = await planFor(analytics.sql, v1.analytics as SchemaIR, { connection: 'analytics' });
    await applyPlan(main.sql, mainPlan, { releaseId: 'rel-1' });
    await applyPlan(analytics.sql, analyticsPlan, { releaseId: 'rel-1' });

    // Then each database holds only its own tables and its own record
    expect(Object.keys((await introspectSchema(main.sql)).ir.tables)).toEqual(['orders', 'users']);
    expect(Object.keys((await introspectSchema(analytics.sql)).ir.tables)).toEqual(['events']);
    expect((await listAppliedReleases(main.sql)).map((r) => r.connection)).toEqual(['main']);
    expect((await listAppliedReleases(analytics.sql)).map((r) => r.connection)).toEqual(['analytics']);
    expect((await checkDrift(main.sql, v1.main as SchemaIR)).differences).toEqual([]);
    expect((await checkDrift(analytics.sql, v1.analytics as SchemaIR)).differences).toEqual([]);

    // When the next release is safe for main but destructive for analytics
    const v2 = declared('', mainFile.replace("      email: { type: string, nullable: false, unique: true }\n", "      email: { type: string, nullable: false, unique: true }\n      name: { type: string }\n"));
    const mainPlan2 = await planFor(main.sql, v2.main as SchemaIR, { previous: v1.main, connection: 'main' });
    const analyticsPlan2 = await planFor(analytics.sql, v2.analytics as SchemaIR, { previous: v1.analytics, connection: 'analytics' });
    const analyticsBefore = await snapshot(analytics);
    const results = await Promise.allSettled([applyPlan(main.sql, mainPlan2, { releaseId: 'rel-2' }), applyPlan(analytics.sql, analyticsPlan2, { releaseId: 'rel-2' })]);

    // Then main moves on while analytics is refused and unchanged
    expect(results[0]?.status).toBe('fulfilled');
    expect(results[1]?.status === 'rejected' && results[1].reason).toBeInstanceOf(DestructiveChangeError);
    expect(((results[1] as PromiseRejectedResult).reason as DestructiveChangeError).connection).toBe('analytics');
    expect((await checkDrift(main.sql, v2.main as SchemaIR)).differences).toEqual([]);
    expect(await snapshot(analytics)).toBe(analyticsBefore);
    // the column v2 no longer declares is still there: information (nothing declares it now), not drift
    const analyticsDrift = await checkDrift(analytics.sql, v2.analytics as SchemaIR);
    expect(analyticsDrift.differences).toEqual([]);
    expect(analyticsDrift.unmanagedObjects.map((d) => d.message)).toEqual(['column events.payload (jsonb) exists but is not declared']);
  });
});
