/**
 * The schema engine: declared YAML schema → IR per connection → plan against the live database →
 * safe transactional apply → exact drift check. Plain TypeScript, shared by operator and CLI.
 *
 *   const parsed = parseSchemaFiles(files);              // ValidationError with file:line:col
 *   const declared = declareSchema(parsed);              // { main: SchemaIR, analytics: SchemaIR }
 *   const plan = await planLiveSchemaChanges(sql, { declared: declared.main, previous, connection: 'main' });
 *     // = introspectSchema (6 catalog queries) + probeLive (rows, duplicates, logical types: only if needed) + planSchemaChanges (pure)
 *   console.log(renderPlan(plan));
 *   await applyPlan(sql, plan, { releaseId, ref, force });   // DestructiveChangeError, PlanStaleError …
 *   const drift = await checkDrift(sql, declared.main);      // drift.differences is empty when in sync
 */

export { parseSchemaFiles, type SchemaSourceFile } from './parse.ts';
export { declareSchema } from './declare.ts';
export { DEFAULT_CONNECTION, type ParsedSchema, type DeclaredTable, type DeclaredColumn, type DeclaredIndex, type DeclaredReference } from './declaration.ts';
export { introspectSchema, probeTablesWithRows, checkServerVersion, SUPPORTED_PG_MAJORS, UnsupportedServerError, type Dependent, type IntrospectOptions, type LiveSchema, type Probes, type Queryable } from './introspect.ts';
export { castOf, type Cast, type CastEffect } from './casts.ts';
export { diffSchemas } from './diff.ts';
export { describeChange, CHANGE_ORDER, type Change, type ChangeKind, type ColumnDefinition } from './changes.ts';
export { hazardsOf, dependsOnRows, HAZARD_KINDS, DESTRUCTIVE_HAZARDS, REFUSING_HAZARDS, type Hazard, type HazardKind } from './hazards.ts';
export { changeSql } from './sql.ts';
export { planLiveSchemaChanges, probeLive, type LivePlanInput } from './plan-live.ts';
export { planSchemaChanges, renderPlan, blockedSteps, managedTablesOf, rowSensitiveTables, PLAN_VERSION, type PlanInput, type PlanStep, type SchemaPlan, type HazardPermission } from './plan.ts';
export { applyPlan, finishPrepared, listPrepared, preparedTransactionId, DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS, type ApplyOptions, type ApplyResult } from './apply.ts';
export { BOOKKEEPING_SCHEMA, BOOKKEEPING_MIGRATIONS, migrateBookkeeping, listAppliedReleases, readReleaseAt, recordReleaseAt, type AppliedRelease, type BookkeepingMigration, type ReleaseAt } from './bookkeeping.ts';
export {
  applyPlanOnline,
  dropInvalidIndexes,
  findInvalidIndexes,
  onlineSchedule,
  renderMode,
  estimateLocks,
  lockCapacity,
  lockRefusal,
  requireLockCapacity,
  failedStepOf,
  APPLY_MODES,
  type ApplyMode,
  type OnlineUnit,
  type OnlineApplyOptions,
  type OnlineApplyResult,
} from './online.ts';
export { checkDrift, compareSchemas, unmanagedObjects, formatDrift, type DriftDifference, type DriftKind, type DriftReport } from './drift.ts';
export { DestructiveChangeError, PlanStaleError, type BlockedStep } from './errors.ts';
export { mapDatabaseError } from './pg-errors.ts';
export {
  hashSchema,
  canonicalJson,
  physicalSchema,
  schemaOf,
  tableList,
  IR_VERSION,
  ID_GENERATORS,
  REFERENTIAL_ACTIONS,
  type SchemaIR,
  type TableIR,
  type ColumnIR,
  type ConstraintIR,
  type CheckIR,
  type IndexIR,
  type ForeignKeyIR,
  type IdGenerate,
  type Identity,
  type ReferentialAction,
} from './ir.ts';
export { LOGICAL_TYPES, type LogicalType } from './types.ts';
