import type postgres from 'postgres';

/**
 * The small repository files most end-to-end tests release: a `users` table in three versions
 * (v2 adds a column; "drop name" is destructive against v1) and a permission file letting the
 * `admin` role read every column.
 */

export const schemaV1 = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false, unique: true }
      name: { type: string }
`;

export const schemaV2 = `${schemaV1}      age: { type: int }
`;

export const schemaDropName = `version: 1
tables:
  users:
    id: { generate: ulid }
    columns:
      email: { type: string, nullable: false, unique: true }
`;

export const permissions = `tables:
  users:
    select:
      - roles: [admin]
        columns: ["*"]
`;

/** The columns of a table in the public schema, sorted: what the database really has. */
export async function columnsOf(sql: postgres.Sql, table: string): Promise<string[]> {
  const rows = await sql<{ column_name: string }[]>`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ${table} ORDER BY column_name`;
  return rows.map((r) => r.column_name);
}
