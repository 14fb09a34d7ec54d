import type { HazardKind } from './hazards.ts';
import { introspectSchema, probeTablesWithRows, type Queryable } from './introspect.ts';
import type { SchemaIR } from './ir.ts';
import { managedTablesOf, planSchemaChanges, rowSensitiveTables, type SchemaPlan } from './plan.ts';

export interface LivePlanInput {
  readonly declared: SchemaIR;
  readonly previous?: SchemaIR | null;
  readonly allowHazards?: readonly HazardKind[];
  readonly connection?: string;
}

/**
 * The usual way to plan one connection: introspect its managed tables (a constant number of
 * catalog queries), probe for rows only the tables whose classification depends on it (usually
 * none), then plan.
 */
export async function planLiveSchemaChanges(sql: Queryable, input: LivePlanInput): Promise<SchemaPlan> {
  const live = await introspectSchema(sql, { managedTables: managedTablesOf(input.declared, input.previous) });
  const probe = rowSensitiveTables(input.declared, live.ir, input.previous);
  const tablesWithRows = probe.length === 0 ? [] : await probeTablesWithRows(sql, probe);
  return planSchemaChanges({ ...input, live: { ...live, tablesWithRows } });
}
