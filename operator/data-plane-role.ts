import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Connection } from '../core/api/resources.ts';
import type { KubeObject } from '../core/kube/client.ts';
import { SCHEMA_LOCK_KEY } from '../core/schema/bookkeeping.ts';
import { openDatabase, parseDatabaseUrl } from './databases.ts';

/**
 * The data plane's own database role, one per Connection (so per environment and database):
 * LOGIN (CONNECT comes from PUBLIC, as for any role), no inheritance, no CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS, USAGE on the schemas of
 * the managed tables and SELECT/INSERT/UPDATE/DELETE on those tables (and USAGE on the sequences
 * they own) — no DDL, no other schema, not the bookkeeping schema. Default privileges of the
 * connection's owner role in those schemas grant the same on tables a later release creates
 * (the pipeline creates them as the owner), so a new release is served at once; the next
 * reconcile of the Connection revokes what is not a managed table any more. The permission model
 * stays enforced by the data plane; this role is the second wall.
 *
 * The operator creates the role with the Connection's owner URL (which therefore needs CREATEROLE)
 * and hands the data plane its URL (owner URL with this role's name and password) in the Secret
 * `santokit-dataplane-<connection>` of the project namespace, owned by the Connection. The
 * password is random, kept in that Secret, and sent to Postgres only as a SCRAM-SHA-256 verifier,
 * so a statement log never holds it.
 */

export const DATA_PLANE_CREDENTIAL_LABEL = 'santokit.io/data-plane-credential';
export const DATA_PLANE_CREDENTIAL_SELECTOR = `${DATA_PLANE_CREDENTIAL_LABEL}=true`;
export const DATA_PLANE_CREDENTIAL_TYPE = 'santokit.io/data-plane-credential';
/** A fingerprint of the grants last made, so an unchanged Connection is not re-granted on every reconcile. */
export const GRANTS_ANNOTATION = 'santokit.io/grants';
/** The database (`host:port/db`) the role was last granted in, so a Connection moved to another database can leave the previous one. */
export const ROLE_TARGET_ANNOTATION = 'santokit.io/role-target';

type Conn = Connection & KubeObject;

interface SecretLike extends KubeObject {
  data?: Record<string, string>;
}

/** The Secret that holds a Connection's data-plane URL. */
export function dataPlaneSecretName(connectionObjectName: string): string {
  return `santokit-dataplane-${connectionObjectName}`;
}

/** The role name of a Connection: derived from its uid, so two clusters (or a re-created Connection) never share one. */
export function dataPlaneRoleName(conn: Pick<Conn, 'metadata'>): string {
  return `stk_dp_${createHash('sha256').update(String(conn.metadata.uid)).digest('hex').slice(0, 24)}`;
}

/** A new random password (ASCII, so SASLprep leaves it as it is). */
export function newDataPlanePassword(): string {
  return randomBytes(32).toString('base64url');
}

/** The SCRAM-SHA-256 verifier Postgres stores for a password (RFC 5802/7677), computed here so the password never reaches the server in a statement. */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The owner URL with the data-plane role's name and password instead of the owner's. */
export function dataPlaneUrl(ownerUrl: string, role: string, password: string): string {
  const u = parseDatabaseUrl(ownerUrl);
  u.username = role;
  u.password = password;
  return u.toString();
}

/** `schema.table` (or `table`, in public) → [schema, table]. */
export function splitTableName(qualified: string): [string, string] {
  const dot = qualified.indexOf('.');
  return dot < 0 ? ['public', qualified] : [qualified.slice(0, dot), qualified.slice(dot + 1)];
}

/** The tables of each connection of a release's schema (what the grants depend on; read with core/release/content.ts). */
export function tablesByConnection(schema: Record<string, unknown>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(schema).map(([connection, ir]) => [connection, Object.keys((ir as { tables?: Record<string, unknown> } | undefined)?.tables ?? {})]));
}

/** The managed tables of connection `name` in the given releases (current and desired; see tablesByConnection), sorted. */
export function managedTablesOfReleases(releases: Array<Record<string, readonly string[]> | undefined>, name: string): string[] {
  const tables = new Set<string>();
  for (const r of releases) for (const t of r?.[name] ?? []) tables.add(t);
  return [...tables].sort();
}

/** What the grants of a role depend on between probes (a new URL changes the Connection's generation, which makes a probe and new grants anyway). */
export function grantsFingerprint(role: string, tables: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify({ v: 1, role, tables })).digest('hex').slice(0, 32);
}

/**
 * Creates or updates the role (password, attributes) and makes its privileges exactly: USAGE on
 * `public` and on each managed table's schema, DML on each managed table that exists, USAGE and
 * SELECT on the sequences those tables own, default privileges for tables and sequences the owner
 * creates later in those schemas; and revokes every table and schema privilege it holds beyond
 * that. One transaction under the owner URL.
 *
 * `managedTables` is read once the schema lock is held: a migration that held it may have created the
 * tables of a release the environment asked for meanwhile, and a list read before the wait would
 * revoke them. Resolves with the tables the grants were made for.
 */
export async function ensureDataPlaneRole(ownerUrl: string, role: string, password: string, managedTables: () => Promise<readonly string[]>): Promise<readonly string[]> {
  const sql = openDatabase(ownerUrl, { max: 1, connectTimeoutSeconds: 5 });
  let grantedFor: readonly string[] = [];
  try {
    await sql.begin(async (tx) => {
      // The release pipeline's schema lock: grants never interleave with a transaction of DDL on
      // the same tables (no lock waits, no deadlock), and two operators granting serialise too.
      await tx`SELECT pg_catalog.set_config('lock_timeout', '10s', true)`;
      await tx`SELECT pg_catalog.pg_advisory_xact_lock(${SCHEMA_LOCK_KEY}::int8)`;
      const tables = (grantedFor = await managedTables());
      const verifier = scramVerifier(password);
      const [current] = (await tx`SELECT rolsuper, rolreplication, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = ${role}`) as unknown as Array<{ rolsuper: boolean; rolreplication: boolean; rolbypassrls: boolean }>;
      // Naming SUPERUSER, REPLICATION or BYPASSRLS in ALTER ROLE, even to say NO, takes a superuser
      // (a Connection user with CREATEROLE only is refused), so ALTER names them only to take one away.
      const attributes = current
        ? ['LOGIN NOINHERIT NOCREATEDB NOCREATEROLE', current.rolsuper ? 'NOSUPERUSER' : '', current.rolreplication ? 'NOREPLICATION' : '', current.rolbypassrls ? 'NOBYPASSRLS' : ''].filter(Boolean).join(' ')
        : 'LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';
      // Everything is gathered first and sent as one batch: a probe re-makes these grants, so few round trips matter.
      const stmts = [`${current ? 'ALTER' : 'CREATE'} ROLE ${ident(role)} WITH ${attributes} PASSWORD ${literal(verifier)}`];

      const wanted = tables.map(splitTableName);
      const schemas = [...new Set(['public', ...wanted.map(([s]) => s)])].sort();
      const existingSchemas = new Set(((await tx`SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(${schemas})`) as unknown as Array<{ nspname: string }>).map((r) => r.nspname));
      for (const schema of schemas) {
        if (!existingSchemas.has(schema)) continue;
        stmts.push(
          `GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(role)}`,
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${ident(schema)} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${ident(role)}`,
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${ident(schema)} GRANT USAGE, SELECT ON SEQUENCES TO ${ident(role)}`,
        );
      }
      const present = (await tx`
        SELECT n.nspname AS schema, c.relname AS name
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND (n.nspname || '.' || c.relname) = ANY(${wanted.map(([s, t]) => `${s}.${t}`)})`) as unknown as Array<{ schema: string; name: string }>;
      const managed = new Set(present.map((t) => `${t.schema}.${t.name}`));
      for (const t of present) stmts.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ${ident(t.schema)}.${ident(t.name)} TO ${ident(role)}`);
      const sequences = (await tx`
        SELECT DISTINCT sn.nspname AS schema, s.relname AS name
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
        JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
          AND (tn.nspname || '.' || t.relname) = ANY(${[...managed]})`) as unknown as Array<{ schema: string; name: string }>;
      const ownedSequences = new Set(sequences.map((s) => `${s.schema}.${s.name}`));
      for (const s of sequences) stmts.push(`GRANT USAGE, SELECT ON SEQUENCE ${ident(s.schema)}.${ident(s.name)} TO ${ident(role)}`);

      // Everything else goes: tables and sequences that are not (or no longer) managed, other schemas.
      const granted = (await tx`
        SELECT DISTINCT n.nspname AS schema, c.relname AS name, c.relkind AS kind
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
        LATERAL aclexplode(c.relacl) a
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ${role})`) as unknown as Array<{ schema: string; name: string; kind: string }>;
      for (const g of granted) {
        const key = `${g.schema}.${g.name}`;
        if (g.kind === 'S' ? ownedSequences.has(key) : managed.has(key)) continue;
        stmts.push(`REVOKE ALL ON ${g.kind === 'S' ? 'SEQUENCE' : 'TABLE'} ${ident(g.schema)}.${ident(g.name)} FROM ${ident(role)}`);
      }
      const usage = (await tx`
        SELECT DISTINCT n.nspname AS schema FROM pg_catalog.pg_namespace n, LATERAL aclexplode(n.nspacl) a
        WHERE a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ${role})`) as unknown as Array<{ schema: string }>;
      for (const u of usage) if (!schemas.includes(u.schema)) stmts.push(`REVOKE ALL ON SCHEMA ${ident(u.schema)} FROM ${ident(role)}`);
      await tx.unsafe(stmts.join(';\n'));
    });
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
  return grantedFor;
}

/**
 * What `removeDataPlaneRole` did: `dropped` (privileges revoked here, role dropped), `revoked`
 * (privileges revoked here, role kept: `keepRole`), `absent` (no such role on this server).
 */
export type RoleRemoval = 'dropped' | 'revoked' | 'absent';

/**
 * Takes a Connection's data-plane role away from the database of `ownerUrl`: ends its sessions
 * there, revokes every privilege it holds in that database, and (unless `keepRole`) drops it.
 * One transaction under the owner URL and the schema lock.
 *
 * When the owner has the role's privileges (a superuser, or a member of it) that is
 * `DROP OWNED BY` (the role owns nothing; this revokes its grants and default privileges in the
 * current database). Otherwise — an owner with CREATEROLE only, which Postgres does not let run
 * `DROP OWNED BY` for a role it is no member of — each grant is revoked by name: tables,
 * sequences, schemas, the database, and the owner's default privileges. `DROP ROLE` then fails
 * with SQLSTATE 2BP01 if the role still holds privileges in another database of the server; the
 * caller reports that (the message names the database).
 */
export async function removeDataPlaneRole(ownerUrl: string, role: string, options: { keepRole?: boolean } = {}): Promise<RoleRemoval> {
  const sql = openDatabase(ownerUrl, { max: 1, connectTimeoutSeconds: 5 });
  try {
    return await sql.begin(async (tx) => {
      await tx`SELECT pg_catalog.set_config('lock_timeout', '10s', true)`;
      await tx`SELECT pg_catalog.pg_advisory_xact_lock(${SCHEMA_LOCK_KEY}::int8)`;
      const found = (await tx`SELECT oid::int8::text AS oid FROM pg_catalog.pg_roles WHERE rolname = ${role}`) as unknown as Array<{ oid: string }>;
      if (found.length === 0) return 'absent';
      const oid = found[0]!.oid;
      const [{ can }] = (await tx`SELECT pg_catalog.pg_has_role(current_user, ${oid}::oid, 'USAGE') AS can`) as unknown as [{ can: boolean }];
      const stmts: string[] = [];
      if (can) {
        // The data plane's sessions end with the grants (only possible with the role's privileges):
        // all of them when the role goes, those in this database when it stays in use elsewhere.
        await tx`SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
          WHERE usesysid = ${oid}::oid AND pid <> pg_catalog.pg_backend_pid() AND (${!options.keepRole} OR datname = current_database())`;
        stmts.push(`DROP OWNED BY ${ident(role)}`);
      } else {
        const relations = (await tx`
          SELECT DISTINCT n.nspname AS schema, c.relname AS name, c.relkind AS kind
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(c.relacl) a
          WHERE a.grantee = ${oid}::oid`) as unknown as Array<{ schema: string; name: string; kind: string }>;
        for (const r of relations) stmts.push(`REVOKE ALL ON ${r.kind === 'S' ? 'SEQUENCE' : 'TABLE'} ${ident(r.schema)}.${ident(r.name)} FROM ${ident(role)}`);
        const schemas = (await tx`
          SELECT DISTINCT n.nspname AS schema FROM pg_catalog.pg_namespace n, LATERAL aclexplode(n.nspacl) a WHERE a.grantee = ${oid}::oid`) as unknown as Array<{ schema: string }>;
        for (const n of schemas) stmts.push(`REVOKE ALL ON SCHEMA ${ident(n.schema)} FROM ${ident(role)}`);
        const database = (await tx`
          SELECT DISTINCT d.datname AS name FROM pg_catalog.pg_database d, LATERAL aclexplode(d.datacl) a WHERE d.datname = current_database() AND a.grantee = ${oid}::oid`) as unknown as Array<{ name: string }>;
        for (const d of database) stmts.push(`REVOKE ALL ON DATABASE ${ident(d.name)} FROM ${ident(role)}`);
        const defaults = (await tx`
          SELECT DISTINCT pg_catalog.pg_get_userbyid(d.defaclrole) AS owner, n.nspname AS schema, d.defaclobjtype AS kind
          FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace, LATERAL aclexplode(d.defaclacl) a
          WHERE a.grantee = ${oid}::oid`) as unknown as Array<{ owner: string; schema: string | null; kind: string }>;
        const objects: Record<string, string> = { r: 'TABLES', S: 'SEQUENCES', f: 'FUNCTIONS', T: 'TYPES', n: 'SCHEMAS' };
        for (const d of defaults) {
          if (!objects[d.kind]) continue;
          stmts.push(`ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(d.owner)}${d.schema === null ? '' : ` IN SCHEMA ${ident(d.schema)}`} REVOKE ALL ON ${objects[d.kind]} FROM ${ident(role)}`);
        }
      }
      if (!options.keepRole) stmts.push(`DROP ROLE ${ident(role)}`);
      if (stmts.length > 0) await tx.unsafe(stmts.join(';\n'));
      return options.keepRole ? 'revoked' : 'dropped';
    });
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** A quoted identifier (what Postgres' quote_ident does, always quoting). */
export function ident(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A quoted string literal (standard_conforming_strings, the default since Postgres 9.1). */
function literal(text: string): string {
  if (text.includes('\0') || text.includes('\\')) throw new Error('unexpected character in a literal');
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * The data-plane credential of a Connection from its Secret, when that Secret is the one the
 * operator wrote for this very Connection (label and owner uid): a version that changes with it,
 * and the URL, decoded only when asked (the data plane checks the version on every request).
 */
export function readDataPlaneCredential(conn: Conn, get: (namespace: string, name: string) => SecretLike | undefined): { version: string; url: () => string } | undefined {
  const secret = get(conn.metadata.namespace!, dataPlaneSecretName(conn.metadata.name));
  const encoded = secret?.data?.url;
  if (!secret || !encoded || (secret.metadata.labels as Record<string, string> | undefined)?.[DATA_PLANE_CREDENTIAL_LABEL] !== 'true') return undefined;
  if (!((secret.metadata.ownerReferences ?? []) as Array<{ uid?: string }>).some((o) => o.uid === conn.metadata.uid)) return undefined;
  return { version: `${conn.metadata.uid}/${secret.metadata.resourceVersion}`, url: () => Buffer.from(encoded, 'base64').toString('utf8') };
}
