import { describeChange, type Change } from './changes.ts';
import { diffSchemas } from './diff.ts';
import { DESTRUCTIVE_HAZARDS, dependsOnRows, hazardsOf, isDestructive, type Hazard, type HazardKind } from './hazards.ts';
import type { LiveSchema } from './introspect.ts';
import { DEFAULT_CONNECTION } from './declaration.ts';
import { canonicalSha256, compareText, hashSchema, pickTables, type SchemaIR } from './ir.ts';
import { changeSql } from './sql.ts';
import type { BlockedStep } from './errors.ts';

/**
 * A plan: the ordered steps that take one connection's live schema to the declared one, the hash of
 * the live schema it was computed from (applying it anywhere else is refused), and a deterministic
 * text rendering. Plain JSON, so the operator can store it and the CLI can print it.
 */

export const PLAN_VERSION = 1;

export interface PlanStep {
  readonly change: Change;
  readonly description: string;
  readonly sql: string;
  readonly hazards: readonly Hazard[];
  /** has `deletes_data` or `correctness`: refused unless forced or allowed */
  readonly destructive: boolean;
}

export interface SchemaPlan {
  readonly version: typeof PLAN_VERSION;
  readonly connection: string;
  /** tables the plan may touch: declared now or by the previous release; apply re-reads exactly these */
  readonly managedTables: readonly string[];
  /** hashSchema of the live schema of `managedTables` the plan was computed from */
  readonly liveHash: string;
  readonly declaredHash: string;
  /** hazards the planner was told are acceptable (used by apply unless it is given its own) */
  readonly allowedHazards: readonly HazardKind[];
  readonly steps: readonly PlanStep[];
  /** SHA-256 over everything above: what the bookkeeping records */
  readonly hash: string;
}

export interface PlanInput {
  readonly declared: SchemaIR;
  readonly live: LiveSchema;
  /** the IR of the release currently applied; only its tables can be dropped */
  readonly previous?: SchemaIR | null;
  readonly allowHazards?: readonly HazardKind[];
  readonly connection?: string;
}

/** The tables a plan may touch: declared now, or declared by the previous release. */
export function managedTablesOf(declared: SchemaIR, previous?: SchemaIR | null): string[] {
  const names = new Set([...Object.keys(declared.tables), ...Object.keys(previous?.tables ?? {})]);
  return [...names].sort(compareText);
}

/** Diffs the declared schema against the live one and classifies every step. Pure. */
export function planSchemaChanges(input: PlanInput): SchemaPlan {
  const connection = input.connection ?? DEFAULT_CONNECTION;
  const managedTables = managedTablesOf(input.declared, input.previous);
  const live = pickTables(input.live.ir, managedTables);
  const changes = diffSchemas(input.declared, live, input.previous);
  const newTables = new Set(changes.filter((c) => c.kind === 'create_table').map((c) => c.table));
  const tablesWithRows = input.live.tablesWithRows === null ? null : new Set(input.live.tablesWithRows);
  const steps = changes.map((change): PlanStep => {
    const hazards = hazardsOf(change, { newTables, tablesWithRows });
    return { change, description: describeChange(change), sql: changeSql(change), hazards, destructive: isDestructive(hazards) };
  });
  const allowedHazards = [...new Set(input.allowHazards ?? [])].sort(compareText);
  const body = {
    version: PLAN_VERSION,
    connection,
    managedTables,
    liveHash: hashSchema(live),
    declaredHash: hashSchema(input.declared),
    allowedHazards,
    steps,
  } as const;
  return { ...body, hash: canonicalSha256(body) };
}

/** Tables whose planned changes are classified differently when they hold rows: the only ones worth probing. */
export function rowSensitiveTables(declared: SchemaIR, live: SchemaIR, previous?: SchemaIR | null): string[] {
  const changes = diffSchemas(declared, pickTables(live, managedTablesOf(declared, previous)), previous);
  return [...new Set(changes.filter(dependsOnRows).map((c) => c.table))].sort(compareText);
}

export interface HazardPermission {
  readonly force?: boolean;
  readonly allowHazards?: readonly HazardKind[];
}

/** The destructive steps not covered by force or by allowed hazards. */
export function blockedSteps(plan: SchemaPlan, permission: HazardPermission = {}): BlockedStep[] {
  if (permission.force) return [];
  const allowed = new Set(permission.allowHazards ?? plan.allowedHazards);
  const out: BlockedStep[] = [];
  plan.steps.forEach((step, i) => {
    const refused = step.hazards.filter((h) => DESTRUCTIVE_HAZARDS.has(h.kind) && !allowed.has(h.kind));
    if (refused.length > 0) out.push({ number: i + 1, description: step.description, hazards: refused });
  });
  return out;
}

/** Byte-identical for identical plans: no timestamps, no locale, fixed order. */
export function renderPlan(plan: SchemaPlan): string {
  const lines: string[] = [];
  const destructive = plan.steps.filter((s) => s.destructive).length;
  if (plan.steps.length === 0) {
    lines.push(`connection ${plan.connection}: no changes`);
  } else {
    const count = `${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'}`;
    lines.push(`connection ${plan.connection}: ${count}, ${destructive} destructive`);
  }
  lines.push(`  live schema ${plan.liveHash}`);
  lines.push(`  plan ${plan.hash}`);
  plan.steps.forEach((step, i) => {
    lines.push('');
    lines.push(`${i + 1}. ${step.description}${step.destructive ? '  [destructive]' : ''}`);
    for (const h of step.hazards) lines.push(`   ${DESTRUCTIVE_HAZARDS.has(h.kind) ? '!' : '~'} ${h.kind}: ${h.message}`);
    for (const line of `${step.sql};`.split('\n')) lines.push(`   ${line}`);
  });
  const blocked = blockedSteps(plan);
  if (blocked.length > 0) {
    const kinds = [...new Set(blocked.flatMap((b) => b.hazards.map((h) => h.kind)))].sort(compareText);
    lines.push('');
    lines.push(`blocked: step${blocked.length === 1 ? ' ' : 's '}${blocked.map((b) => b.number).join(', ')} need${blocked.length === 1 ? 's' : ''} force or allowed hazards (${kinds.join(', ')})`);
  }
  return `${lines.join('\n')}\n`;
}
