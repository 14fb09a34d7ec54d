import type { ColumnIR, ConstraintIR, ForeignKeyIR, Identity, IndexIR } from './ir.ts';

/**
 * The typed changes a plan is made of. Each is one DDL statement (see `sql.ts`); hazards are decided
 * from these structures (see `hazards.ts`), never from SQL text.
 */

/**
 * `refused` (on a few kinds) is why the step cannot apply, found by the diff (a key that could not
 * be re-created, a table other keys still reference): the plan refuses it (`cannot_apply`).
 */

/** A column as Postgres stores it: the physical part of ColumnIR. */
export type ColumnDefinition = Pick<ColumnIR, 'name' | 'type' | 'nullable' | 'default' | 'identity'>;

export type Change =
  | { readonly kind: 'create_table'; readonly table: string; readonly columns: readonly ColumnDefinition[]; readonly primaryKey: ConstraintIR | null; readonly uniques: readonly ConstraintIR[] }
  | { readonly kind: 'drop_table'; readonly table: string; readonly refused?: string }
  | { readonly kind: 'rename_table'; readonly table: string; readonly from: string }
  | { readonly kind: 'add_column'; readonly table: string; readonly column: ColumnDefinition }
  | { readonly kind: 'drop_column'; readonly table: string; readonly column: string }
  | { readonly kind: 'rename_column'; readonly table: string; readonly from: string; readonly to: string }
  | { readonly kind: 'alter_column_type'; readonly table: string; readonly column: string; readonly from: string; readonly to: string }
  | { readonly kind: 'reset_collation'; readonly table: string; readonly column: string; readonly type: string; readonly from: string }
  | { readonly kind: 'check_values'; readonly table: string; readonly column: string; readonly from: string; readonly to: string; readonly items: string | null }
  | { readonly kind: 'set_default'; readonly table: string; readonly column: string; readonly from: string | null; readonly to: string }
  | { readonly kind: 'drop_default'; readonly table: string; readonly column: string; readonly from: string }
  | { readonly kind: 'set_not_null'; readonly table: string; readonly column: string }
  | { readonly kind: 'drop_not_null'; readonly table: string; readonly column: string }
  | { readonly kind: 'add_identity'; readonly table: string; readonly column: string; readonly identity: Identity }
  | { readonly kind: 'restart_identity'; readonly table: string; readonly column: string }
  | { readonly kind: 'rename_sequence'; readonly table: string; readonly column: string; readonly to: string }
  | { readonly kind: 'alter_identity'; readonly table: string; readonly column: string; readonly identity: Identity }
  | { readonly kind: 'drop_identity'; readonly table: string; readonly column: string }
  | { readonly kind: 'add_primary_key'; readonly table: string; readonly constraint: ConstraintIR }
  | { readonly kind: 'drop_primary_key'; readonly table: string; readonly name: string; readonly columns: readonly string[] }
  | { readonly kind: 'add_unique'; readonly table: string; readonly constraint: ConstraintIR }
  | { readonly kind: 'drop_unique'; readonly table: string; readonly name: string; readonly columns: readonly string[] }
  | { readonly kind: 'create_index'; readonly table: string; readonly index: IndexIR }
  | { readonly kind: 'drop_index'; readonly table: string; readonly name: string; readonly columns: readonly string[]; readonly unique: boolean }
  | { readonly kind: 'add_foreign_key'; readonly table: string; readonly foreignKey: ForeignKeyIR; readonly refused?: string }
  | { readonly kind: 'drop_foreign_key'; readonly table: string; readonly name: string; readonly refTable: string }
  | { readonly kind: 'rename_constraint'; readonly table: string; readonly from: string; readonly to: string }
  | { readonly kind: 'rename_index'; readonly table: string; readonly from: string; readonly to: string };

export type ChangeKind = Change['kind'];

/**
 * The order changes run in. Table renames, then removals (so names and dependencies are free), then the other renames,
 * then additions and alterations, then the constraints and indexes that need the final columns.
 */
export const CHANGE_ORDER: readonly ChangeKind[] = [
  // first: the steps below name a renamed table by its new name (a table is renamed only to a
  // name no live table holds, so no drop below is in its way)
  'rename_table',
  'drop_foreign_key',
  'drop_index',
  'drop_unique',
  'drop_primary_key',
  'drop_table',
  'rename_column',
  'rename_constraint',
  'rename_index',
  'rename_sequence',
  'create_table',
  'add_column',
  'drop_default',
  'drop_identity',
  'alter_column_type',
  'reset_collation',
  'set_default',
  'drop_not_null',
  'set_not_null',
  'check_values',
  'add_identity',
  'restart_identity',
  'alter_identity',
  'drop_column',
  'add_primary_key',
  'add_unique',
  'create_index',
  'add_foreign_key',
];

/** `array of int`, `json` */
export function logicalText(type: string, items: string | null): string {
  return type === 'array' && items !== null ? `array of ${items}` : type;
}

/** One line naming what a change does: `add column users.bio`. */
export function describeChange(c: Change): string {
  const t = c.table;
  switch (c.kind) {
    case 'create_table':
      return `create table ${t}`;
    case 'drop_table':
      return `drop table ${t}`;
    case 'rename_table':
      return `rename table ${c.from} to ${t}`;
    case 'reset_collation':
      return `reset collation of ${t}.${c.column} (${c.from}) to the default`;
    case 'check_values':
      return `check that every value of ${t}.${c.column} is ${logicalText(c.to, c.items)} (was ${c.from})`;
    case 'restart_identity':
      return `continue the identity of ${t}.${c.column} after its largest value`;
    case 'rename_sequence':
      return `rename the identity sequence of ${t}.${c.column} to ${c.to}`;
    case 'add_column':
      return `add column ${t}.${c.column.name}`;
    case 'drop_column':
      return `drop column ${t}.${c.column}`;
    case 'rename_column':
      return `rename column ${t}.${c.from} to ${c.to}`;
    case 'alter_column_type':
      return `change type of ${t}.${c.column} from ${c.from} to ${c.to}`;
    case 'set_default':
      return `set default of ${t}.${c.column} to ${c.to}`;
    case 'drop_default':
      return `drop default of ${t}.${c.column}`;
    case 'set_not_null':
      return `set NOT NULL on ${t}.${c.column}`;
    case 'drop_not_null':
      return `drop NOT NULL on ${t}.${c.column}`;
    case 'add_identity':
      return `make ${t}.${c.column} an identity column`;
    case 'alter_identity':
      return `make ${t}.${c.column} generated ${c.identity === 'always' ? 'always' : 'by default'}`;
    case 'drop_identity':
      return `drop identity of ${t}.${c.column}`;
    case 'add_primary_key':
      return `add primary key ${c.constraint.name} on ${t} (${c.constraint.columns.join(', ')})`;
    case 'drop_primary_key':
      return `drop primary key ${c.name} of ${t}`;
    case 'add_unique':
      return `add unique constraint ${c.constraint.name} on ${t} (${c.constraint.columns.join(', ')})`;
    case 'drop_unique':
      return `drop unique constraint ${c.name} of ${t}`;
    case 'create_index':
      return `create ${c.index.unique ? 'unique ' : ''}index ${c.index.name} on ${t} (${c.index.columns.join(', ')})`;
    case 'drop_index':
      return `drop index ${c.name} of ${t}`;
    case 'add_foreign_key':
      return `add foreign key ${c.foreignKey.name} on ${t} (${c.foreignKey.columns.join(', ')}) → ${c.foreignKey.refTable} (${c.foreignKey.refColumns.join(', ')})`;
    case 'drop_foreign_key':
      return `drop foreign key ${c.name} of ${t}`;
    case 'rename_constraint':
      return `rename constraint ${c.from} of ${t} to ${c.to}`;
    case 'rename_index':
      return `rename index ${c.from} of ${t} to ${c.to}`;
  }
}
