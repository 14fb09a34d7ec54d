import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ValidationError } from './errors.ts';

/**
 * Project API keys, shared by `stk apikey` (which creates and revokes them) and the data plane
 * (which verifies them).
 *
 * Format: `stk_<keyId>_<secret>`: the key id (`ak` and 16 hex digits) is not secret and names the
 * Secret that stores the key, so a presented key is looked up by id and then verified; the secret
 * part is 32 random bytes, base64url. The `stk_` prefix is what `core/redact.ts` scrubs from text.
 *
 * Only a hash is stored: scrypt with a per-key random salt, in a self-describing string
 * (`scrypt$v=1$n=…,r=…,p=…$<salt>$<digest>`). Verification accepts exactly the parameters `stk`
 * writes (`isAcceptedApiKeyHash`): a planted Secret with a huge cost must not make verification
 * exhaust memory or CPU. Raising the cost later means adding the new parameters to the accepted
 * set. Verification compares digests with `timingSafeEqual`.
 *
 * Revoking a key sets its status to `revoked` and deletes its hash, so patching the status back
 * cannot revive it.
 *
 * Storage: one Secret per key in the project namespace, named `santokit-apikey-<keyId>`, labelled
 * `santokit.io/api-key=true`, `santokit.io/project` and `santokit.io/environment` (the binding),
 * with data keyId, name, roles (comma list), status (active|revoked), createdAt, hash, and the
 * annotation `santokit.io/last-used-at` that the data plane maintains.
 */

export const API_KEY_LABEL = 'santokit.io/api-key';
export const API_KEY_PROJECT_LABEL = 'santokit.io/project';
export const API_KEY_ENVIRONMENT_LABEL = 'santokit.io/environment';
export const LAST_USED_ANNOTATION = 'santokit.io/last-used-at';
export const API_KEY_SECRET_TYPE = 'santokit.io/api-key';
/** Label selector of every API-key Secret. */
export const API_KEY_SELECTOR = `${API_KEY_LABEL}=true`;

export type ApiKeyStatus = 'active' | 'revoked';

/** What a key Secret says about its key (never the plaintext, which is not stored). */
export interface ApiKeyRecord {
  readonly keyId: string;
  readonly name: string;
  readonly project: string;
  readonly environment: string;
  readonly roles: readonly string[];
  readonly status: ApiKeyStatus;
  readonly createdAt: string;
  readonly revokedAt: string | undefined;
  readonly lastUsedAt: string | undefined;
  /** the stored hash; empty for a revoked key (revocation deletes it) */
  readonly hash: string;
}

/** The Secret shape this module reads and writes (a subset of the Kubernetes object). */
export interface ApiKeySecret {
  apiVersion: 'v1';
  kind: 'Secret';
  type?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  data?: Record<string, string>;
}

const KEY_ID_PATTERN = /^ak[0-9a-f]{16}$/;
const API_KEY_PATTERN = /^stk_(ak[0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const ROLE_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const SECRET_NAME_PREFIX = 'santokit-apikey-';

/** The scrypt cost of new keys: N=2^14, r=8, p=1 (16 MiB, tens of milliseconds). Keys carry 256 random bits, so the cost guards a leaked hash store, not a guessable secret. */
const SCRYPT_COST = { n: 1 << 14, r: 8, p: 1 } as const;
const SCRYPT_KEY_LENGTH = 32;
const SCRYPT_SALT_LENGTH = 16;

/** True when `text` has the shape of a key id. */
export function isKeyId(text: string): boolean {
  return KEY_ID_PATTERN.test(text);
}

/** The name of the Secret that stores a key. */
export function apiKeySecretName(keyId: string): string {
  return `${SECRET_NAME_PREFIX}${keyId}`;
}

/** A new key: its id and the plaintext, which is shown once and never stored. */
export function generateApiKey(): { keyId: string; apiKey: string } {
  const keyId = `ak${randomBytes(8).toString('hex')}`;
  return { keyId, apiKey: `stk_${keyId}_${randomBytes(32).toString('base64url')}` };
}

/** The key id of a presented key, or undefined when the text is not a Santokit API key. */
export function keyIdOf(apiKey: string): string | undefined {
  return API_KEY_PATTERN.exec(apiKey)?.[1];
}

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function scryptOptions(n: number, r: number, p: number): ScryptOptions {
  // Node refuses above maxmem (32 MiB by default); scrypt needs 128 * N * r bytes and a little more.
  return { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 };
}

/** The stored form of a key: scrypt parameters, a fresh random salt and the digest. */
export async function hashApiKey(apiKey: string): Promise<string> {
  const salt = randomBytes(SCRYPT_SALT_LENGTH);
  const { n, r, p } = SCRYPT_COST;
  const digest = await scrypt(apiKey, salt, SCRYPT_KEY_LENGTH, scryptOptions(n, r, p));
  return `scrypt$v=1$n=${n},r=${r},p=${p}$${salt.toString('base64url')}$${digest.toString('base64url')}`;
}

interface ParsedHash {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  digest: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const m = /^scrypt\$v=1\$n=(\d{1,7}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})$/.exec(hash);
  if (!m) return undefined;
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (n !== SCRYPT_COST.n || r !== SCRYPT_COST.r || p !== SCRYPT_COST.p) return undefined;
  const salt = Buffer.from(m[4]!, 'base64url');
  const digest = Buffer.from(m[5]!, 'base64url');
  if (salt.length !== SCRYPT_SALT_LENGTH || digest.length !== SCRYPT_KEY_LENGTH) return undefined;
  return { n, r, p, salt, digest };
}

/**
 * True when a stored hash has exactly the form and scrypt parameters `stk` writes (N=2^14, r=8,
 * p=1, 16-byte salt, 32-byte digest). Anything else is refused before any scrypt work, so a
 * planted key Secret cannot make verification costly.
 */
export function isAcceptedApiKeyHash(hash: string): boolean {
  return parseHash(hash) !== undefined;
}

/** True when `apiKey` is the key `hash` was made from. A hash `isAcceptedApiKeyHash` refuses verifies nothing (and costs nothing). */
export async function verifyApiKey(apiKey: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const digest = await scrypt(apiKey, parsed.salt, parsed.digest.length, scryptOptions(parsed.n, parsed.r, parsed.p));
  return digest.length === parsed.digest.length && timingSafeEqual(digest, parsed.digest);
}

/** Parses and checks `--roles r1,r2`: at least one, each like the roles of permissions.yaml, no repeats. */
export function parseRoles(text: string): string[] {
  const roles = text
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  const problems = roles.filter((r) => !ROLE_PATTERN.test(r) || r.length > 63);
  if (roles.length === 0) throw new ValidationError('--roles needs at least one role, e.g. --roles reader,writer');
  if (problems.length > 0) throw new ValidationError(`invalid role${problems.length === 1 ? '' : 's'} ${problems.map((r) => JSON.stringify(r)).join(', ')}: use letters, digits and _ . : - (at most 63)`);
  return [...new Set(roles)];
}

/** Checks a key's display name: 1–100 printable characters. */
export function checkKeyName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.length > 100 || /[\p{Cc}]/u.test(trimmed)) throw new ValidationError('--name must be 1 to 100 printable characters');
  return trimmed;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | null | undefined): string | undefined => (typeof text !== 'string' ? undefined : Buffer.from(text, 'base64').toString('utf8'));

/** The Secret that stores a new key (its hash, never the plaintext). */
export function apiKeySecret(input: { namespace: string; project: string; environment: string; keyId: string; name: string; roles: readonly string[]; hash: string; createdAt: string }): ApiKeySecret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: API_KEY_SECRET_TYPE,
    metadata: {
      name: apiKeySecretName(input.keyId),
      namespace: input.namespace,
      labels: {
        [API_KEY_LABEL]: 'true',
        [API_KEY_PROJECT_LABEL]: input.project,
        [API_KEY_ENVIRONMENT_LABEL]: input.environment,
        'app.kubernetes.io/managed-by': 'santokit',
      },
    },
    data: {
      keyId: b64(input.keyId),
      name: b64(input.name),
      roles: b64(input.roles.join(',')),
      status: b64('active'),
      createdAt: b64(input.createdAt),
      hash: b64(input.hash),
    },
  };
}

/** The data patch that revokes a key (a JSON merge patch of the Secret): status revoked, and the hash deleted so the key can never verify again. */
export function revocationPatch(revokedAt: string): { data: Record<string, string | null> } {
  return { data: { status: b64('revoked'), revokedAt: b64(revokedAt), hash: null } };
}

/** The metadata patch that records when a key was last used. */
export function lastUsedPatch(at: string): { metadata: { annotations: Record<string, string> } } {
  return { metadata: { annotations: { [LAST_USED_ANNOTATION]: at } } };
}

/** Reads a key Secret; undefined when it is not one (wrong labels, missing or malformed fields). */
export function readApiKeySecret(secret: { metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; data?: Record<string, string> }): ApiKeyRecord | undefined {
  const labels = secret.metadata.labels ?? {};
  const data = secret.data ?? {};
  const keyId = unb64(data.keyId);
  const project = labels[API_KEY_PROJECT_LABEL];
  const environment = labels[API_KEY_ENVIRONMENT_LABEL];
  const hash = unb64(data.hash);
  const status = unb64(data.status);
  if (labels[API_KEY_LABEL] !== 'true' || !keyId || !isKeyId(keyId) || secret.metadata.name !== apiKeySecretName(keyId)) return undefined;
  if (!project || !environment || (status !== 'active' && status !== 'revoked')) return undefined;
  // An active key without a hash is malformed; a revoked key has none (revocation deletes it).
  if (status === 'active' && !hash) return undefined;
  const roles = (unb64(data.roles) ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  return {
    keyId,
    name: unb64(data.name) ?? '',
    project,
    environment,
    roles,
    status,
    createdAt: unb64(data.createdAt) ?? '',
    revokedAt: unb64(data.revokedAt),
    lastUsedAt: secret.metadata.annotations?.[LAST_USED_ANNOTATION],
    hash: status === 'active' ? hash! : '',
  };
}
