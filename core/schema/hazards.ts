import type { Change } from './changes.ts';

/**
 * What can go wrong when a change runs, decided from the structured change (never from SQL text).
 * A change is destructive when it may lose data (`deletes_data`) or change what the data means or
 * whether the application keeps working (`correctness`); those block unless the caller forces the
 * apply or allows the hazard by name. The others describe cost (locks, index builds, rewrites).
 */

export type HazardKind =
  | 'deletes_data'
  | 'correctness'
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
  'index_dropped',
  'index_build',
  'table_rewrite',
  'access_exclusive_lock',
  'share_row_exclusive_lock',
  'share_lock',
  'share_update_exclusive_lock',
];

export const DESTRUCTIVE_HAZARDS: ReadonlySet<HazardKind> = new Set(['deletes_data', 'correctness']);

export interface Hazard {
  readonly kind: HazardKind;
  readonly message: string;
}

export interface HazardContext {
  /** tables created by this plan: nobody else can see them yet, so their changes carry no hazard */
  readonly newTables: ReadonlySet<string>;
  /** managed tables known to hold rows; null when unknown (then every table is assumed to) */
  readonly tablesWithRows: ReadonlySet<string> | null;
}

const exclusive = (table: string): Hazard => ({ kind: 'access_exclusive_lock', message: `blocks every read and write of ${table} while it runs (ACCESS EXCLUSIVE)` });

export function hazardsOf(change: Change, ctx: HazardContext): Hazard[] {
  const t = change.table;
  if (change.kind === 'create_table') return [];
  if (ctx.newTables.has(t)) {
    // a new table is invisible to others, but a key to an existing table still locks that one
    if (change.kind === 'add_foreign_key' && !ctx.newTables.has(change.foreignKey.refTable)) {
      return [{ kind: 'share_row_exclusive_lock', message: `blocks writes to ${change.foreignKey.refTable} while the key is added (SHARE ROW EXCLUSIVE)` }];
    }
    return [];
  }
  const hasRows = ctx.tablesWithRows === null || ctx.tablesWithRows.has(t);
  switch (change.kind) {
    case 'drop_table':
      return [{ kind: 'deletes_data', message: `drops table ${t} and every row in it` }, exclusive(t)];
    case 'drop_column':
      return [{ kind: 'deletes_data', message: `drops column ${t}.${change.column} and the data it holds` }, exclusive(t)];
    case 'add_column': {
      const c = change.column;
      const out: Hazard[] = [];
      if (!c.nullable && c.default === null && c.identity === null && hasRows) {
        out.push({ kind: 'correctness', message: `${t} has rows: a NOT NULL column without a default cannot be added to them` });
      }
      if (c.identity !== null) out.push({ kind: 'table_rewrite', message: `rewrites ${t} to number existing rows` });
      out.push(exclusive(t));
      return out;
    }
    case 'alter_column_type':
      return [
        { kind: 'correctness', message: `converts every value of ${t}.${change.column} from ${change.from} to ${change.to}; readers of the old type may break` },
        { kind: 'table_rewrite', message: `rewrites ${t} and its indexes` },
        exclusive(t),
      ];
    case 'set_not_null':
      return [{ kind: 'correctness', message: `${t}.${change.column} stops accepting NULL; the apply fails if it holds any, and writers that send NULL break` }, exclusive(t)];
    case 'drop_identity':
      return [{ kind: 'correctness', message: `${t}.${change.column} stops generating values; inserts without an id fail` }, exclusive(t)];
    case 'add_identity':
      return hasRows
        ? [{ kind: 'correctness', message: `the new sequence of ${t}.${change.column} starts at 1 and may collide with existing ids` }, exclusive(t)]
        : [exclusive(t)];
    case 'add_primary_key':
    case 'add_unique':
      return [{ kind: 'index_build', message: `builds an index on ${t}, reading the whole table` }, exclusive(t)];
    case 'drop_primary_key':
    case 'drop_unique':
      return [{ kind: 'index_dropped', message: `drops the index behind ${change.name}; uniqueness is no longer enforced and queries that used it get slower` }, exclusive(t)];
    case 'drop_index':
      return [{ kind: 'index_dropped', message: `drops index ${change.name}; queries that used it get slower` }, exclusive(t)];
    case 'create_index':
      return [
        { kind: 'index_build', message: `builds index ${change.index.name}, reading the whole table` },
        { kind: 'share_lock', message: `blocks writes to ${t} while the index is built (SHARE)` },
      ];
    case 'add_foreign_key': {
      const ref = change.foreignKey.refTable;
      const tables = ref === t ? t : `${t} and ${ref}`;
      return [{ kind: 'share_row_exclusive_lock', message: `blocks writes to ${tables} while existing rows are checked (SHARE ROW EXCLUSIVE)` }];
    }
    case 'rename_index':
      return [{ kind: 'share_update_exclusive_lock', message: `blocks schema changes and VACUUM on ${t} briefly (SHARE UPDATE EXCLUSIVE)` }];
    case 'rename_column':
    case 'rename_constraint':
    case 'set_default':
    case 'drop_default':
    case 'drop_not_null':
    case 'alter_identity':
    case 'drop_foreign_key':
      return [exclusive(t)];
  }
}

/** Whether a change's hazards depend on the table holding rows (so a row probe is worth it). */
export function dependsOnRows(change: Change): boolean {
  if (change.kind === 'add_identity') return true;
  return change.kind === 'add_column' && !change.column.nullable && change.column.default === null && change.column.identity === null;
}

export function isDestructive(hazards: readonly Hazard[]): boolean {
  return hazards.some((h) => DESTRUCTIVE_HAZARDS.has(h.kind));
}
