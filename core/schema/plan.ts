import { describeChange, type Change } from './changes.ts';
import { diffSchemas } from './diff.ts';
import { DESTRUCTIVE_HAZARDS, REFUSING_HAZARDS, dependsOnRows, hazardsOf, isDestructive, isRefused, uniqueKey, type Hazard, type HazardKind } from './hazards.ts';
import type { LiveSchema } from './introspect.ts';
import { identitySequenceName } from './names.ts';
import { DEFAULT_CONNECTION } from './declaration.ts';
import { canonicalSha256, compareText, hashSchema, pickTables, tableList, type SchemaIR } from './ir.ts';
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
  /** has `cannot_apply` or `untrackable_dependencies`: Postgres would refuse it; nothing lets it run */
  readonly refused?: true;
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

/** The tables a plan may touch: declared now (or under a previous name), or declared by the previous release. */
export function managedTablesOf(declared: SchemaIR, previous?: SchemaIR | null): string[] {
  const names = new Set([...Object.keys(declared.tables), ...Object.keys(previous?.tables ?? {})]);
  for (const t of Object.values(declared.tables)) for (const p of t.previousNames ?? []) names.add(p);
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
  // the unique keys the declaration keeps: only needed when a step drops one
  const uniqueAfter = new Set<string>();
  if (changes.some((c) => c.kind === 'drop_unique' || c.kind === 'drop_primary_key' || c.kind === 'drop_index')) {
    for (const t of tableList(input.declared)) {
      if (t.primaryKey) uniqueAfter.add(uniqueKey(t.name, t.primaryKey.columns));
      for (const u of t.uniques) uniqueAfter.add(uniqueKey(t.name, u.columns));
      for (const i of t.indexes) if (i.unique && i.definition === null) uniqueAfter.add(uniqueKey(t.name, i.columns));
    }
  }
  // dependents are read under the live table names; steps name a renamed table by its new name
  const renamedTo = new Map(changes.flatMap((c) => (c.kind === 'rename_table' ? [[c.from, c.table] as const] : [])));
  const dependents = renamedTo.size === 0 ? input.live.dependents : input.live.dependents?.map((d) => ({ ...d, table: renamedTo.get(d.table) ?? d.table }));
  const ctx = { newTables, tablesWithRows, uniqueAfter, ...(dependents ? { dependents } : {}), ...(input.live.probes ? { probes: input.live.probes } : {}) };
  const taken = nameClashes(changes, live, input.live.relationNames ?? null);
  const steps = changes.map((change, i): PlanStep => {
    const hazards = [...(taken.get(i) ?? []), ...hazardsOf(change, ctx)];
    const refused = isRefused(hazards);
    return { change, description: describeChange(change), sql: changeSql(change), hazards, destructive: isDestructive(hazards), ...(refused ? { refused: true as const } : {}) };
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

/**
 * Relation names (tables, indexes, sequences, views …) share one namespace per schema. Walks the
 * steps in order over the names the schema holds and refuses a step that would create or rename
 * onto a name still taken (by an object the engine does not manage, for instance), instead of
 * letting Postgres fail at apply, or silently pick another name for an identity sequence.
 */
function nameClashes(changes: readonly Change[], live: SchemaIR, relationNames: readonly string[] | null): Map<number, Hazard[]> {
  const out = new Map<number, Hazard[]>();
  const claims = new Set<string>(['rename_table', 'rename_index', 'rename_constraint', 'rename_sequence', 'create_table', 'add_column', 'add_identity', 'add_primary_key', 'add_unique', 'create_index']);
  if (relationNames === null || !changes.some((c) => claims.has(c.kind))) return out;
  const held = new Set(relationNames);
  const objectsOf = (t: string): string[] => {
    const table = live.tables[t];
    if (!table) return [];
    return [
      ...(table.primaryKey ? [table.primaryKey.name] : []),
      ...table.uniques.map((u) => u.name),
      ...table.indexes.map((i) => i.name),
      ...table.columns.filter((c) => c.identity !== null).map((c) => identitySequenceName(t, c.name)),
    ];
  };
  const refuse = (i: number, name: string, what: string): void => {
    const list = out.get(i) ?? [];
    list.push({ kind: 'cannot_apply', message: `${what} ${name} is already taken by another object of the schema (a table, index, sequence or view the release does not manage); rename or drop that object, or choose another name` });
    out.set(i, list);
  };
  const claim = (i: number, name: string, what: string): void => {
    if (held.has(name)) refuse(i, name, what);
    else held.add(name);
  };
  changes.forEach((c, i) => {
    switch (c.kind) {
      case 'drop_table':
        held.delete(c.table);
        for (const n of objectsOf(c.table)) held.delete(n);
        break;
      case 'drop_index':
      case 'drop_unique':
      case 'drop_primary_key':
        held.delete(c.name);
        break;
      case 'rename_table':
        held.delete(c.from);
        claim(i, c.table, 'the table name');
        break;
      case 'rename_index':
        held.delete(c.from);
        claim(i, c.to, 'the index name');
        break;
      case 'rename_constraint':
        // only keys backed by an index live in the schema's namespace
        if (held.has(c.from)) {
          held.delete(c.from);
          claim(i, c.to, 'the key name');
        }
        break;
      case 'rename_sequence':
        claim(i, c.to, 'the sequence name');
        break;
      case 'create_table':
        claim(i, c.table, 'the table name');
        if (c.primaryKey) claim(i, c.primaryKey.name, 'the primary key name');
        for (const u of c.uniques) claim(i, u.name, 'the unique key name');
        for (const col of c.columns) if (col.identity !== null) claim(i, identitySequenceName(c.table, col.name), 'the identity sequence name');
        break;
      case 'add_column':
        if (c.column.identity !== null) claim(i, identitySequenceName(c.table, c.column.name), 'the identity sequence name');
        break;
      case 'add_identity':
        claim(i, identitySequenceName(c.table, c.column), 'the identity sequence name');
        break;
      case 'add_primary_key':
      case 'add_unique':
        claim(i, c.constraint.name, 'the key name');
        break;
      case 'create_index':
        claim(i, c.index.name, 'the index name');
        break;
      default:
        break;
    }
  });
  return out;
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

/**
 * The destructive steps not covered by force or by allowed hazards, and the refused steps (those
 * Postgres would refuse: nothing covers them).
 */
export function blockedSteps(plan: SchemaPlan, permission: HazardPermission = {}): BlockedStep[] {
  const allowed = new Set(permission.allowHazards ?? plan.allowedHazards);
  const out: BlockedStep[] = [];
  plan.steps.forEach((step, i) => {
    const refused = step.hazards.filter((h) => REFUSING_HAZARDS.has(h.kind) || (!permission.force && DESTRUCTIVE_HAZARDS.has(h.kind) && !allowed.has(h.kind)));
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
    lines.push(`${i + 1}. ${step.description}${step.refused ? '  [refused]' : step.destructive ? '  [destructive]' : ''}`);
    for (const h of step.hazards) lines.push(`   ${DESTRUCTIVE_HAZARDS.has(h.kind) ? '!' : '~'} ${h.kind}: ${h.message}`);
    for (const line of `${step.sql};`.split('\n')) lines.push(`   ${line}`);
  });
  const refused = plan.steps.flatMap((s, i) => (s.refused ? [i + 1] : []));
  if (refused.length > 0) {
    lines.push('');
    lines.push(`refused: step${refused.length === 1 ? ' ' : 's '}${refused.join(', ')} cannot be applied (see the reasons above); change the declaration or the database first`);
  }
  const blocked = blockedSteps(plan).filter((b) => !plan.steps[b.number - 1]?.refused);
  if (blocked.length > 0) {
    const kinds = [...new Set(blocked.flatMap((b) => b.hazards.map((h) => h.kind)))].sort(compareText);
    lines.push('');
    lines.push(`blocked: step${blocked.length === 1 ? ' ' : 's '}${blocked.map((b) => b.number).join(', ')} need${blocked.length === 1 ? 's' : ''} force or allowed hazards (${kinds.join(', ')})`);
  }
  return `${lines.join('\n')}\n`;
}
