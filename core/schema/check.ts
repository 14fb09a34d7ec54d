import type { FieldError } from '../errors.ts';
import { declaredDefault } from './defaults.ts';
import {
  DEFAULT_CONNECTION,
  type DeclaredColumn,
  type DeclaredIndex,
  type DeclaredTable,
  type ParsedSchema,
  type RawColumn,
  type RawSchemaFile,
  type RawTable,
} from './declaration.ts';
import { compareText } from './ir.ts';
import { identitySequenceName, indexName, primaryKeyName, uniqueName } from './names.ts';
import { fieldError, keyPositions, type Position, type Segment, type SourceDoc } from './source.ts';
import { MAX_DECIMAL_PRECISION, idSqlType, parseTypeSpec, sqlTypeOf, type TypeSpec } from './types.ts';

/**
 * The rules a JSON Schema cannot express: per-column consistency (items, decimals, defaults),
 * the id column, and everything that spans tables or files (duplicate tables, references,
 * relation names per connection).
 */

/** Columns every Postgres table already has. */
const SYSTEM_COLUMNS = new Set(['tableoid', 'xmin', 'cmin', 'xmax', 'cmax', 'ctid']);

interface Located {
  readonly table: DeclaredTable;
  readonly source: SourceDoc;
  readonly path: readonly Segment[];
}

const ORIGIN: Position = { line: 1, column: 1 };

export function checkSchema(files: readonly { source: SourceDoc; data: RawSchemaFile }[]): { schema: ParsedSchema } | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  const tables = new Map<string, Located>();

  for (const { source, data } of files) {
    const positions = keyPositions(source, ['tables']);
    for (const [name, raw] of Object.entries(data.tables)) {
      const path: Segment[] = ['tables', name];
      const table = checkTable(source, path, name, raw, positions.get(name) ?? ORIGIN, errors);
      const earlier = tables.get(name);
      if (earlier) {
        const at = earlier.table.source;
        errors.push(fieldError(source, path, `table "${name}" is already declared in ${at.path}:${at.line}:${at.column}; table names are unique across all files`, 'key'));
        continue;
      }
      tables.set(name, { table, source, path });
    }
  }

  for (const [name, located] of tables) tables.set(name, { ...located, table: checkReferences(located, tables, errors) });
  checkTablePreviousNames(tables, errors);
  checkRelationNames(tables, errors);

  if (errors.length > 0) return { errors };
  const sorted = [...tables.values()].map((l) => l.table).sort((a, b) => compareText(a.name, b.name));
  return { schema: { tables: sorted } };
}

function checkTable(source: SourceDoc, path: Segment[], name: string, raw: RawTable, at: Position, errors: FieldError[]): DeclaredTable {
  const idName = raw.id?.name ?? 'id';
  const id = { name: idName, generate: raw.id?.generate ?? 'ulid', previousNames: raw.id?.previousNames ?? [] };
  const rawColumns = Object.entries(raw.columns ?? {});
  const declaredNames = new Set([idName, ...rawColumns.map(([n]) => n)]);

  if (SYSTEM_COLUMNS.has(idName)) errors.push(fieldError(source, [...path, 'id', 'name'], `"${idName}" is a Postgres system column name; choose another name`));
  checkPreviousNames(source, [...path, 'id', 'previousNames'], idName, id.previousNames, declaredNames, errors);

  const columns: DeclaredColumn[] = [];
  for (const [colName, col] of rawColumns) {
    const colPath = [...path, 'columns', colName];
    if (colName === idName) {
      errors.push(fieldError(source, colPath, `column "${colName}" redefines the id column; configure the id under "id:" instead`, 'key'));
      continue;
    }
    if (SYSTEM_COLUMNS.has(colName)) {
      errors.push(fieldError(source, colPath, `"${colName}" is a Postgres system column name; choose another name`, 'key'));
      continue;
    }
    columns.push(checkColumn(source, colPath, colName, col, declaredNames, errors));
  }

  const indexes: DeclaredIndex[] = [];
  (raw.indexes ?? []).forEach((ix, i) => {
    const ixPath = [...path, 'indexes', i];
    ix.columns.forEach((c, j) => {
      if (!declaredNames.has(c)) errors.push(fieldError(source, [...ixPath, 'columns', j], `unknown column "${c}" in table "${name}"`));
    });
    indexes.push({ name: ix.name ?? indexName(name, ix.columns), columns: [...ix.columns], unique: ix.unique ?? false });
  });

  return {
    name,
    connection: raw.connection ?? DEFAULT_CONNECTION,
    id,
    columns,
    indexes,
    previousNames: raw.previousNames ?? [],
    unmanaged: raw.unmanaged ?? 'report',
    source: { path: source.path, line: at.line, column: at.column },
  };
}

/** A table's previous name must be free: not its own name, not a table declared in the same connection. */
function checkTablePreviousNames(tables: ReadonlyMap<string, Located>, errors: FieldError[]): void {
  const claimed = new Map<string, string>();
  for (const { table, source, path } of tables.values()) {
    table.previousNames.forEach((p, i) => {
      const at = [...path, 'previousNames', i];
      const other = tables.get(p);
      if (p === table.name) errors.push(fieldError(source, at, `"${p}" is the table's current name, not a previous one`));
      else if (other !== undefined && other.table.connection === table.connection) errors.push(fieldError(source, at, `"${p}" is declared as a table; a previous name must be free`));
      else {
        const key = `${table.connection}:${p}`;
        const first = claimed.get(key);
        if (first !== undefined) errors.push(fieldError(source, at, `"${p}" is already a previous name of table "${first}"; a table can be renamed into only one`));
        else claimed.set(key, table.name);
      }
    });
  }
}

function checkColumn(source: SourceDoc, path: Segment[], name: string, col: RawColumn, declaredNames: ReadonlySet<string>, errors: FieldError[]): DeclaredColumn {
  const type = parseTypeSpec(col.type) as TypeSpec;
  if (type.type === 'decimal' && type.precision !== null) {
    if (type.precision < 1 || type.precision > MAX_DECIMAL_PRECISION) {
      errors.push(fieldError(source, [...path, 'type'], `decimal precision must be between 1 and ${MAX_DECIMAL_PRECISION} (got ${type.precision})`));
    } else if ((type.scale ?? 0) > type.precision) {
      errors.push(fieldError(source, [...path, 'type'], `decimal scale ${type.scale} is larger than its precision ${type.precision}`));
    }
  }
  if (type.type === 'array' && col.items === undefined) {
    errors.push(fieldError(source, path, `array column "${name}" needs "items" (the element type)`, 'key'));
  }
  if (type.type !== 'array' && col.items !== undefined) {
    errors.push(fieldError(source, [...path, 'items'], `"items" is only allowed on array columns (this column is ${col.type})`, 'key'));
  }
  if (col.default !== undefined && col.default !== null) {
    const result = declaredDefault(type.type, sqlTypeOf(type), col.default, col.items);
    if ('error' in result) errors.push(fieldError(source, [...path, 'default'], result.error));
  }
  checkPreviousNames(source, [...path, 'previousNames'], name, col.previousNames ?? [], declaredNames, errors);
  const ref = col.references;
  return {
    name,
    type,
    items: col.items ?? null,
    nullable: col.nullable ?? true,
    unique: col.unique ?? false,
    default: col.default ?? undefined,
    references:
      ref === undefined
        ? null
        : { table: ref.table, column: ref.column ?? '', as: ref.as ?? null, onDelete: ref.onDelete ?? 'no_action', onUpdate: ref.onUpdate ?? 'no_action' },
    previousNames: col.previousNames ?? [],
  };
}

function checkPreviousNames(source: SourceDoc, path: Segment[], name: string, previous: readonly string[], declaredNames: ReadonlySet<string>, errors: FieldError[]): void {
  previous.forEach((p, i) => {
    if (p === name) errors.push(fieldError(source, [...path, i], `"${p}" is the column's current name, not a previous one`));
    else if (declaredNames.has(p)) errors.push(fieldError(source, [...path, i], `"${p}" is declared as a column of this table; a previous name must be free`));
  });
}

function columnType(table: DeclaredTable, column: string): string | undefined {
  if (column === table.id.name) return idSqlType(table.id.generate);
  const c = table.columns.find((x) => x.name === column);
  return c === undefined ? undefined : sqlTypeOf(c.type);
}

function isUniqueColumn(table: DeclaredTable, column: string): boolean {
  if (column === table.id.name) return true;
  if (table.columns.some((c) => c.name === column && c.unique)) return true;
  return table.indexes.some((ix) => ix.unique && ix.columns.length === 1 && ix.columns[0] === column);
}

/** Checks every reference of a table; returns the table with each referenced column resolved. */
function checkReferences(located: Located, tables: ReadonlyMap<string, Located>, errors: FieldError[]): DeclaredTable {
  const { table, source, path } = located;
  const columns = table.columns.map((col) => {
    const ref = col.references;
    if (ref === null) return col;
    const refPath = [...path, 'columns', col.name, 'references'];
    const target = tables.get(ref.table);
    if (!target) {
      errors.push(fieldError(source, [...refPath, 'table'], `unknown table "${ref.table}"`));
      return col;
    }
    if (target.table.connection !== table.connection) {
      errors.push(
        fieldError(
          source,
          [...refPath, 'table'],
          `table "${ref.table}" is in connection "${target.table.connection}" but "${table.name}" is in "${table.connection}"; a reference cannot cross connections`,
        ),
      );
      return col;
    }
    const refColumn = ref.column === '' ? target.table.id.name : ref.column;
    const targetType = columnType(target.table, refColumn);
    if (targetType === undefined) {
      errors.push(fieldError(source, [...refPath, 'column'], `unknown column "${refColumn}" in table "${ref.table}"`));
      return col;
    }
    if (!isUniqueColumn(target.table, refColumn)) {
      errors.push(fieldError(source, [...refPath, 'column'], `${ref.table}.${refColumn} is neither the id nor unique; a reference needs a unique column`));
      return col;
    }
    const ownType = sqlTypeOf(col.type);
    if (ownType !== targetType) {
      errors.push(fieldError(source, [...path, 'columns', col.name, 'type'], `type ${ownType} does not match ${ref.table}.${refColumn} (${targetType}); a reference needs the same type`));
      return col;
    }
    for (const key of ['onDelete', 'onUpdate'] as const) {
      if (ref[key] === 'set_null' && !col.nullable) {
        errors.push(fieldError(source, [...refPath, key], `set_null needs a nullable column, but ${table.name}.${col.name} is not nullable`));
      }
    }
    return { ...col, references: { ...ref, column: refColumn } };
  });
  return { ...table, columns };
}

/** Tables, indexes and the indexes behind primary keys and unique constraints share one namespace. */
function checkRelationNames(tables: ReadonlyMap<string, Located>, errors: FieldError[]): void {
  const owners = new Map<string, Map<string, string>>();
  const claim = (connection: string, name: string, owner: string): string | undefined => {
    let names = owners.get(connection);
    if (!names) owners.set(connection, (names = new Map()));
    const previous = names.get(name);
    if (previous === undefined) names.set(name, owner);
    return previous;
  };
  const ordered = [...tables.values()].sort((a, b) => compareText(a.source.path, b.source.path) || a.table.source.line - b.table.source.line);
  for (const { table } of ordered) claim(table.connection, table.name, `table "${table.name}"`);
  for (const { table, source, path } of ordered) {
    const clash = claim(table.connection, primaryKeyName(table.name), `the primary key of table "${table.name}"`);
    if (clash) errors.push(fieldError(source, path, `the primary key name "${primaryKeyName(table.name)}" is already used by ${clash}`, 'key'));
    if (table.id.generate === 'auto_increment') {
      // Postgres names the identity's sequence itself; a taken name would make it pick another
      const sequence = identitySequenceName(table.name, table.id.name);
      const taken = claim(table.connection, sequence, `the identity sequence of table "${table.name}"`);
      if (taken) errors.push(fieldError(source, [...path, 'id', 'generate'], `the identity sequence name "${sequence}" of table "${table.name}" is already used by ${taken}`));
    }
    for (const col of table.columns) {
      if (!col.unique) continue;
      const name = uniqueName(table.name, [col.name]);
      const clash2 = claim(table.connection, name, `the unique constraint of ${table.name}.${col.name}`);
      if (clash2) errors.push(fieldError(source, [...path, 'columns', col.name, 'unique'], `the unique constraint name "${name}" is already used by ${clash2}`));
    }
  }
  for (const { table, source, path } of ordered) {
    table.indexes.forEach((ix, i) => {
      const clash = claim(table.connection, ix.name, `index "${ix.name}" of table "${table.name}"`);
      if (!clash) return;
      const message = clash.startsWith('index ')
        ? `duplicate index name "${ix.name}" (already used by an index of ${clash.slice(clash.indexOf(' of ') + 4)}); index names are unique per connection`
        : `index name "${ix.name}" is already used by ${clash}`;
      errors.push(fieldError(source, [...path, 'indexes', i], message));
    });
  }
}
