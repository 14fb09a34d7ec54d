import type { JsonValue } from './defaults.ts';
import type { IdGenerate, ReferentialAction } from './ir.ts';
import type { LogicalType, TypeSpec } from './types.ts';

/**
 * A validated declaration: what `schema/*.yaml` says, with every default applied and every
 * cross-reference checked. `declareSchema` turns it into one IR per connection.
 */

export const DEFAULT_CONNECTION = 'main';

export interface SourceRef {
  readonly path: string;
  readonly line: number;
  readonly column: number;
}

export interface DeclaredId {
  readonly name: string;
  readonly generate: IdGenerate;
  readonly previousNames: readonly string[];
}

export interface DeclaredReference {
  readonly table: string;
  readonly column: string;
  readonly as: string | null;
  readonly onDelete: ReferentialAction;
  readonly onUpdate: ReferentialAction;
}

export interface DeclaredColumn {
  readonly name: string;
  readonly type: TypeSpec;
  readonly items: LogicalType | null;
  readonly nullable: boolean;
  readonly unique: boolean;
  /** the YAML value as written; absent or null means no default */
  readonly default: JsonValue | undefined;
  readonly references: DeclaredReference | null;
  readonly previousNames: readonly string[];
}

export interface DeclaredIndex {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
}

export interface DeclaredTable {
  readonly name: string;
  readonly connection: string;
  readonly id: DeclaredId;
  /** in file order */
  readonly columns: readonly DeclaredColumn[];
  readonly indexes: readonly DeclaredIndex[];
  /** names the table had before (renamed, never guessed) */
  readonly previousNames: readonly string[];
  /** how drift treats objects in the table that no release declared */
  readonly unmanaged: 'report' | 'drift';
  readonly source: SourceRef;
}

export interface ParsedSchema {
  /** sorted by name */
  readonly tables: readonly DeclaredTable[];
}

/** The shape of a file once it passed the JSON Schema (`schema/schema.schema.json`). */
export interface RawSchemaFile {
  readonly version: 1;
  readonly tables: Readonly<Record<string, RawTable>>;
}

export interface RawTable {
  readonly connection?: string;
  readonly id?: { readonly name?: string; readonly generate?: IdGenerate; readonly previousNames?: readonly string[] };
  readonly columns?: Readonly<Record<string, RawColumn>>;
  readonly indexes?: readonly RawIndex[];
  readonly previousNames?: readonly string[];
  readonly unmanaged?: 'report' | 'drift';
}

export interface RawColumn {
  readonly type: string;
  readonly items?: LogicalType;
  readonly nullable?: boolean;
  readonly unique?: boolean;
  readonly default?: JsonValue;
  readonly references?: {
    readonly table: string;
    readonly column?: string;
    readonly as?: string;
    readonly onDelete?: ReferentialAction;
    readonly onUpdate?: ReferentialAction;
  };
  readonly previousNames?: readonly string[];
}

export interface RawIndex {
  readonly columns: readonly string[];
  readonly unique?: boolean;
  readonly name?: string;
}
