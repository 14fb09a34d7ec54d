import { castOf } from './casts.ts';
import { logicalText, type Change } from './changes.ts';
import type { Dependent, Probes } from './introspect.ts';

/**
 * What can go wrong when a change runs, decided from the structured change (never from SQL text).
 * A change is destructive when it may lose data (`deletes_data`) or change what the data means or
 * whether the application keeps working (`correctness`); those block unless the caller forces the
 * apply or allows the hazard by name. The others describe cost (locks, index builds, rewrites).
 */

export type HazardKind =
  | 'deletes_data'
  | 'correctness'
  | 'cannot_apply'
  | 'untrackable_dependencies'
  | 'index_dropped'
  | 'index_build'
  | 'table_rewrite'
  | 'access_exclusive_lock'
  | 'share_row_exclusive_lock'
  | 'share_lock'
  | 'share_update_exclusive_lock';

export const HAZARD_KINDS: readonly HazardKind[] = [
  'deletes_data',
  'correctness',
  'cannot_apply',
  'untrackable_dependencies',
  'index_dropped',
  'index_build',
  'table_rewrite',
  'access_exclusive_lock',
  'share_row_exclusive_lock',
  'share_lock',
  'share_update_exclusive_lock',
];

/**
 * Hazards of a step Postgres would refuse: `cannot_apply` (an impossible cast, a unique key over
 * duplicates, a name already taken …) and `untrackable_dependencies` (a view, rule or foreign key
 * outside the managed tables depends on what the step changes, like pg-schema-diff's
 * HAS_UNTRACKABLE_DEPENDENCIES). Neither force nor allowing them by name lets such a step run:
 * the plan is refused at plan time with the reason, instead of failing at apply.
 */
export const REFUSING_HAZARDS: ReadonlySet<HazardKind> = new Set(['cannot_apply', 'untrackable_dependencies']);

export const DESTRUCTIVE_HAZARDS: ReadonlySet<HazardKind> = new Set(['deletes_data', 'correctness', ...REFUSING_HAZARDS]);

export interface Hazard {
  readonly kind: HazardKind;
  readonly message: string;
}

export interface HazardContext {
  /** tables created by this plan: nobody else can see them yet, so their changes carry no hazard */
  readonly newTables: ReadonlySet<string>;
  /** managed tables known to hold rows; null when unknown (then every table is assumed to) */
  readonly tablesWithRows: ReadonlySet<string> | null;
  /** objects outside the managed tables that depend on them (see introspect.ts) */
  readonly dependents?: readonly Dependent[];
  /** what plan-time probes found; absent when not probed */
  readonly probes?: Probes;
  /** `uniqueKey(table, columns)` of every key the declaration keeps unique: dropping another form of it removes no guarantee */
  readonly uniqueAfter?: ReadonlySet<string>;
}

/** How `HazardContext.uniqueAfter` names a unique key: the table and its sorted columns. */
export const uniqueKey = (table: string, columns: readonly string[]): string => `${table}(${[...columns].sort().join(',')})`;

function lostGuarantee(ctx: HazardContext, table: string, name: string, columns: readonly string[], what: string): Hazard[] {
  if (ctx.uniqueAfter?.has(uniqueKey(table, columns))) return [];
  return [{ kind: 'correctness', message: `drops ${what}${name}: ${table} (${columns.join(', ')}) is no longer unique, so duplicates can be written` }];
}

const lockedTables = (tables: readonly string[]): string => {
  const unique = [...new Set(tables)];
  return unique.length === 1 ? (unique[0] as string) : `${unique.slice(0, -1).join(', ')} and ${unique[unique.length - 1]}`;
};

const exclusive = (...tables: string[]): Hazard => ({ kind: 'access_exclusive_lock', message: `blocks every read and write of ${lockedTables(tables)} while it runs (ACCESS EXCLUSIVE)` });

/** `table:name` and `table.column`: how probe results name what they found. */
export const probeKey = {
  key: (table: string, name: string): string => `${table}:${name}`,
  column: (table: string, column: string): string => `${table}.${column}`,
};

/** The dependents a step changing `columns` of `table` (all of it: null) breaks; `retype`: the step changes their type. */
function dependentsOn(ctx: HazardContext, table: string, columns: readonly string[] | null, retype = false): Hazard[] {
  const found = (ctx.dependents ?? []).filter((d) => d.table === table && (retype || d.typeOnly !== true) && (columns === null || d.column === null || columns.includes(d.column)));
  if (found.length === 0) return [];
  const names = [...new Set(found.map((d) => d.description))];
  return [
    {
      kind: 'untrackable_dependencies',
      message: `${names.join(', ')} depend${names.length === 1 ? 's' : ''} on ${columns === null ? table : columns.map((c) => `${table}.${c}`).join(', ')}, and the engine does not manage ${names.length === 1 ? 'it' : 'them'}; drop ${names.length === 1 ? 'it' : 'them'} before this release and re-create ${names.length === 1 ? 'it' : 'them'} after`,
    },
  ];
}

function duplicates(ctx: HazardContext, table: string, name: string, columns: readonly string[]): Hazard[] {
  if (!ctx.probes?.duplicateKeys.includes(probeKey.key(table, name))) return [];
  return [{ kind: 'cannot_apply', message: `${table} (${columns.join(', ')}) already holds duplicate values, so ${name} cannot be built; remove the duplicates first` }];
}

export function hazardsOf(change: Change, ctx: HazardContext): Hazard[] {
  const t = change.table;
  const refused: Hazard[] = 'refused' in change && change.refused !== undefined ? [{ kind: 'cannot_apply', message: change.refused }] : [];
  if (change.kind === 'create_table') return [];
  if (ctx.newTables.has(t)) {
    // a new table is invisible to others, but a key to an existing table still locks that one
    if (change.kind === 'add_foreign_key' && !ctx.newTables.has(change.foreignKey.refTable)) {
      return [...refused, { kind: 'share_row_exclusive_lock', message: `blocks writes to ${change.foreignKey.refTable} while the key is added (SHARE ROW EXCLUSIVE)` }];
    }
    return refused;
  }
  const hasRows = ctx.tablesWithRows === null || ctx.tablesWithRows.has(t);
  switch (change.kind) {
    case 'drop_table':
      return [...refused, ...dependentsOn(ctx, t, null), { kind: 'deletes_data', message: `drops table ${t} and every row in it` }, exclusive(t)];
    case 'rename_table':
      return [exclusive(t)];
    case 'drop_column':
      return [...dependentsOn(ctx, t, [change.column]), { kind: 'deletes_data', message: `drops column ${t}.${change.column} and the data it holds` }, exclusive(t)];
    case 'add_column': {
      const c = change.column;
      const out: Hazard[] = [];
      if (!c.nullable && c.default === null && c.identity === null && hasRows) {
        // known rows: Postgres refuses it, force or not; unknown: it may fail
        const hint = 'declare a default, or add the column nullable, fill it, then make it NOT NULL';
        if (ctx.tablesWithRows !== null) out.push({ kind: 'cannot_apply', message: `${t} has rows: a NOT NULL column without a default cannot be added to them; ${hint}` });
        else out.push({ kind: 'correctness', message: `${t} may have rows: a NOT NULL column without a default cannot be added to them` });
      }
      if (c.identity !== null) out.push({ kind: 'table_rewrite', message: `rewrites ${t} to number existing rows` });
      out.push(exclusive(t));
      return out;
    }
    case 'alter_column_type': {
      const cast = castOf(change.column, change.from, change.to);
      const at = `${t}.${change.column}`;
      const out: Hazard[] = [...dependentsOn(ctx, t, [change.column], true)];
      const failure = ctx.probes?.castFailures?.find((f) => f.column === probeKey.column(t, change.column));
      if (cast.effect === 'impossible') out.push({ kind: 'cannot_apply', message: cast.note });
      else if (failure !== undefined) {
        out.push({ kind: 'cannot_apply', message: `${at} holds values that cannot be converted from ${change.from} to ${change.to} (${failure.reason}); fix or remove them first, or convert the column in your own migration` });
      }
      else if (hasRows && cast.effect === 'changes_data') out.push({ kind: 'deletes_data', message: `changes the values of ${at} from ${change.from} to ${change.to}: ${cast.note}` });
      else if (hasRows && cast.effect !== 'exact') {
        out.push({ kind: 'correctness', message: `converts every value of ${at} from ${change.from} to ${change.to}: ${cast.note}; readers of the old type may break` });
      }
      out.push({ kind: 'table_rewrite', message: `rewrites ${t} and its indexes` }, exclusive(t));
      return out;
    }
    case 'reset_collation':
      return [{ kind: 'correctness', message: `${t}.${change.column} compares and sorts with the default collation instead of ${change.from}` }, { kind: 'index_build', message: `rebuilds the indexes of ${t} that use ${change.column}` }, exclusive(t)];
    case 'check_values': {
      const what = logicalText(change.to, change.items);
      const misfit = ctx.probes?.misfits.includes(probeKey.column(t, change.column)) === true;
      return [
        misfit
          ? { kind: 'cannot_apply', message: `${t}.${change.column} holds values that are not ${what}; fix them (or declare the column as ${change.from}) first` }
          : { kind: 'correctness', message: `${t}.${change.column} changes from ${change.from} to ${what}: the apply fails if a value does not fit, and writers of other values break` },
      ];
    }
    case 'set_not_null':
      if (ctx.probes?.nulls.includes(probeKey.column(t, change.column))) {
        return [{ kind: 'cannot_apply', message: `${t}.${change.column} holds NULLs, so it cannot become NOT NULL; fill them first (or declare a default and fill them)` }, exclusive(t)];
      }
      return [{ kind: 'correctness', message: `${t}.${change.column} stops accepting NULL; the apply fails if it holds any, and writers that send NULL break` }, exclusive(t)];
    case 'drop_identity':
      return [{ kind: 'correctness', message: `${t}.${change.column} stops generating values; inserts without an id fail` }, exclusive(t)];
    case 'add_identity':
      return [exclusive(t)];
    case 'restart_identity':
      return [];
    case 'rename_sequence':
      return [{ kind: 'access_exclusive_lock', message: `blocks inserts into ${t} that draw an id while the sequence is renamed (ACCESS EXCLUSIVE on the sequence)` }];
    case 'add_primary_key':
      return [...duplicates(ctx, t, change.constraint.name, change.constraint.columns), { kind: 'index_build', message: `builds an index on ${t}, reading the whole table` }, exclusive(t)];
    case 'add_unique':
      return [...duplicates(ctx, t, change.constraint.name, change.constraint.columns), { kind: 'index_build', message: `builds an index on ${t}, reading the whole table` }, exclusive(t)];
    case 'drop_primary_key':
    case 'drop_unique':
      return [
        ...dependentsOn(ctx, t, change.columns),
        ...lostGuarantee(ctx, t, change.name, change.columns, ''),
        { kind: 'index_dropped', message: `drops the index behind ${change.name}; queries that used it get slower` },
        exclusive(t),
      ];
    case 'drop_index':
      return [
        ...(change.unique ? dependentsOn(ctx, t, change.columns) : []),
        ...(change.unique ? lostGuarantee(ctx, t, change.name, change.columns, 'unique index ') : []),
        { kind: 'index_dropped', message: `drops index ${change.name}; queries that used it get slower` },
        exclusive(t),
      ];
    case 'create_index':
      return [
        ...(change.index.unique ? duplicates(ctx, t, change.index.name, change.index.columns) : []),
        { kind: 'index_build', message: `builds index ${change.index.name}, reading the whole table` },
        { kind: 'share_lock', message: `blocks writes to ${t} while the index is built (SHARE)` },
      ];
    case 'add_foreign_key': {
      const ref = change.foreignKey.refTable;
      if (ctx.probes?.missingReferences?.includes(probeKey.key(t, change.foreignKey.name))) {
        refused.push({
          kind: 'cannot_apply',
          message: `${t} (${change.foreignKey.columns.join(', ')}) holds values that ${ref} (${change.foreignKey.refColumns.join(', ')}) lacks, so ${change.foreignKey.name} cannot be added; add the missing rows to ${ref} or clear those values first`,
        });
      }
      return [...refused, { kind: 'share_row_exclusive_lock', message: `blocks writes to ${lockedTables([t, ref])} while existing rows are checked (SHARE ROW EXCLUSIVE)` }];
    }
    case 'drop_foreign_key':
      // removing the key's triggers locks the referenced table as well
      return [exclusive(t, change.refTable)];
    case 'rename_index':
      return [{ kind: 'share_update_exclusive_lock', message: `blocks schema changes and VACUUM on ${t} briefly (SHARE UPDATE EXCLUSIVE)` }];
    case 'rename_column':
    case 'rename_constraint':
    case 'set_default':
    case 'drop_default':
    case 'drop_not_null':
    case 'alter_identity':
      return [exclusive(t)];
  }
}

/** Whether a change's hazards depend on the table holding rows (so a row probe is worth it). */
export function dependsOnRows(change: Change): boolean {
  if (change.kind === 'alter_column_type') return true;
  return change.kind === 'add_column' && !change.column.nullable && change.column.default === null && change.column.identity === null;
}

export function isDestructive(hazards: readonly Hazard[]): boolean {
  return hazards.some((h) => DESTRUCTIVE_HAZARDS.has(h.kind));
}

export function isRefused(hazards: readonly Hazard[]): boolean {
  return hazards.some((h) => REFUSING_HAZARDS.has(h.kind));
}
