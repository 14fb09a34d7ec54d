import type { Command } from 'commander';
import {
  API_KEY_ENVIRONMENT_LABEL,
  API_KEY_SELECTOR,
  apiKeySecret,
  apiKeySecretName,
  checkKeyName,
  generateApiKey,
  hashApiKey,
  isKeyId,
  parseRoles,
  readApiKeySecret,
  revocationPatch,
  type ApiKeyRecord,
} from '../../core/apikeys.ts';
import { Kinds } from '../../core/api/resources.ts';
import { ForbiddenError, NotFoundError, UsageError } from '../../core/errors.ts';
import { isAlreadyExists, type KubeClient, type KubeObject } from '../../core/kube/client.ts';
import { formatTable, printJson, println } from '../output.ts';
import { run, type Flags } from '../runner.ts';
import { Session } from '../session.ts';
import { namespaceOfProject } from './project.ts';

/**
 * `stk apikey create|list|revoke`: project API keys for the data plane (`POST /call`), each bound
 * to one environment and a list of roles. The plaintext is printed once, by `create`; only an
 * scrypt hash is stored (see core/apikeys.ts for the format and the Secret layout).
 */

type SecretObject = KubeObject & { data?: Record<string, string> };

function forbidden(err: unknown, what: string, project: string): unknown {
  if (err instanceof ForbiddenError) return new ForbiddenError(`forbidden: you may not ${what} in project ${project} (API keys are Secrets in its namespace): ${err.message}`);
  return err;
}

function row(r: ApiKeyRecord) {
  return { keyId: r.keyId, name: r.name, env: r.environment, roles: [...r.roles], status: r.status, createdAt: r.createdAt, lastUsedAt: r.lastUsedAt ?? null, revokedAt: r.revokedAt ?? null };
}

async function createKey(flags: Flags): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  const env = session.requireEnv();
  if (flags.name === undefined) throw new UsageError('--name is required', { hint: 'e.g. --name web-frontend' });
  if (flags.roles === undefined) throw new UsageError('--roles is required', { hint: 'e.g. --roles reader,writer (the roles of config/permissions.yaml)' });
  const name = checkKeyName(String(flags.name));
  const roles = parseRoles(String(flags.roles));
  const client = await session.client();
  const namespace = await namespaceOfProject(client, project);
  if (!(await client.find(Kinds.Environment, env, namespace))) {
    throw new NotFoundError(`environment ${env} does not exist in project ${project}`, { hint: `create it with \`stk env create --project ${project} ${env}\`` });
  }
  for (let attempt = 0; ; attempt++) {
    const { keyId, apiKey } = generateApiKey();
    const createdAt = new Date().toISOString();
    const secret = apiKeySecret({ namespace, project, environment: env, keyId, name, roles, hash: await hashApiKey(apiKey), createdAt });
    try {
      await client.create<SecretObject>(Kinds.Secret, secret as SecretObject);
    } catch (err) {
      // A key id collision (64 random bits) is all but impossible; try a fresh one anyway.
      if (isAlreadyExists(err) && attempt < 3) continue;
      throw forbidden(err, 'create API keys', project);
    }
    if (flags.json) printJson({ keyId, apiKey, name, project, env, roles, createdAt });
    else {
      println(`keyId=${keyId}`);
      println(`apiKey=${apiKey}`);
      process.stderr.write('Store the API key now: it is shown only this once (only a hash is kept).\n');
    }
    return;
  }
}

async function listKeys(flags: Flags): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  const env = session.settings.env;
  const client = await session.client();
  const namespace = await namespaceOfProject(client, project);
  const selector = env ? `${API_KEY_SELECTOR},${API_KEY_ENVIRONMENT_LABEL}=${env}` : API_KEY_SELECTOR;
  let items: SecretObject[];
  try {
    items = (await client.list<SecretObject>(Kinds.Secret, { namespace, labelSelector: selector })).items;
  } catch (err) {
    throw forbidden(err, 'list API keys', project);
  }
  const rows = items
    .map((s) => readApiKeySecret(s))
    .filter((r): r is ApiKeyRecord => r !== undefined && r.project === project)
    .sort((a, b) => a.environment.localeCompare(b.environment) || a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId))
    .map(row);
  if (flags.json) return printJson(rows);
  println(
    formatTable(
      ['KEY ID', 'NAME', 'ENV', 'ROLES', 'STATUS', 'CREATED', 'LAST USED'],
      rows.map((r) => [r.keyId, r.name, r.env, r.roles.join(','), r.status, r.createdAt, r.lastUsedAt ?? '-']),
    ),
  );
}

async function revokeKey(flags: Flags): Promise<void> {
  const session = new Session(flags);
  const project = session.requireProject();
  // Optional: when given (or set in the context) the key must belong to this environment.
  const env = session.settings.env;
  const keyId = flags.keyId === undefined ? undefined : String(flags.keyId);
  if (keyId === undefined) throw new UsageError('--key-id is required', { hint: 'find it with `stk apikey list`' });
  if (!isKeyId(keyId)) throw new UsageError(`"${keyId}" is not a key id (ak followed by 16 hex digits)`, { hint: 'find it with `stk apikey list`' });
  const client: KubeClient = await session.client();
  const namespace = await namespaceOfProject(client, project);
  let record: ApiKeyRecord | undefined;
  try {
    const secret = await client.find<SecretObject>(Kinds.Secret, apiKeySecretName(keyId), namespace);
    record = secret ? readApiKeySecret(secret) : undefined;
  } catch (err) {
    throw forbidden(err, 'read API keys', project);
  }
  if (!record || record.project !== project || (env !== undefined && record.environment !== env)) {
    throw new NotFoundError(`API key ${keyId} does not exist in ${env === undefined ? `project ${project}` : `${project}/${env}`}`, { hint: `list keys with \`stk apikey list${env === undefined ? '' : ` --env ${env}`}\`` });
  }
  const alreadyRevoked = record.status === 'revoked';
  if (!alreadyRevoked) {
    try {
      await client.patch(Kinds.Secret, apiKeySecretName(keyId), namespace, revocationPatch(new Date().toISOString()));
    } catch (err) {
      throw forbidden(err, 'revoke API keys', project);
    }
  }
  if (flags.json) printJson({ keyId, status: 'revoked', alreadyRevoked });
  else println(alreadyRevoked ? `API key ${keyId} was already revoked` : `API key ${keyId} revoked: the data plane refuses it within seconds`);
}

export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('API keys of an environment for the data plane (POST /call)');

  apikey
    .command('create')
    .description('create an API key bound to an environment and roles; prints it once')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment the key is bound to (default: context)')
    .option('--name <name>', 'what the key is for, e.g. web-frontend')
    .option('--roles <roles>', 'comma list of roles, as named in config/permissions.yaml')
    .action(run((flags) => createKey(flags)));

  apikey
    .command('list')
    .description('list API keys: id, name, environment, roles, status, created, last used (never the key)')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'only keys of this environment (default: context, else all)')
    .action(run((flags) => listKeys(flags)));

  apikey
    .command('revoke')
    .description('revoke an API key (its hash is deleted): the data plane refuses it within seconds')
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment the key must belong to (default: context, else any)')
    .option('--key-id <id>', 'the key to revoke (see `stk apikey list`)')
    .action(run((flags) => revokeKey(flags)));
}
