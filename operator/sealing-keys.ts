import type { Logger } from 'pino';
import { Kinds, type Connection, type SealedValue } from '../core/api/resources.ts';
import { ConflictError, UnavailableError, ValidationError } from '../core/errors.ts';
import { KubeClient, type KubeObject } from '../core/kube/client.ts';
import { makeSealingKeyPair, sealingKeyId, unseal } from '../core/sealing.ts';
import { SEALING_SECRET, writeSealingCertificate } from './bootstrap.ts';

/**
 * The operator's sealing keys. The Secret `santokit-sealing-key` holds the current pair
 * (`tls.key`, `tls.crt`: new values are sealed for it) and, after a rotation, the retired private
 * keys as `retired-<keyId>.key`, so values sealed before the rotation still open until each is
 * sealed again. A sealed value names its key (`keyId`); a value for a key this process has not
 * loaded yet (another replica rotated) makes it read the Secret again.
 */

const RETIRED_PREFIX = 'retired-';

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

const decode = (b64: string | undefined): string => Buffer.from(b64 ?? '', 'base64').toString('utf8');
const encode = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** keyId → private key PEM, and which one is current. */
interface Keys {
  current: string;
  byId: Map<string, string>;
}

function keysOf(secret: SecretObject): Keys {
  const certPem = decode(secret.data?.['tls.crt']);
  const keyPem = decode(secret.data?.['tls.key']);
  if (!certPem || !keyPem) throw new UnavailableError(`the sealing key secret ${SEALING_SECRET} has no tls.key/tls.crt`, { reason: 'SealingKeyMissing' });
  const current = sealingKeyId(certPem);
  const byId = new Map([[current, keyPem]]);
  for (const [name, value] of Object.entries(secret.data ?? {})) {
    const m = /^retired-([0-9a-f]{16})\.key$/.exec(name);
    if (m?.[1]) byId.set(m[1], decode(value));
  }
  return { current, byId };
}

export class SealingKeyring {
  private keys: Keys | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  /** Opens a sealed value with the key it names (the current key when it names none). */
  async open(sealed: SealedValue, binding: string | readonly string[]): Promise<string> {
    this.keys ??= await this.load();
    if (sealed.keyId && !this.keys.byId.has(sealed.keyId)) this.keys = await this.load();
    const keyId = sealed.keyId ?? this.keys.current;
    const key = this.keys.byId.get(keyId);
    if (!key) {
      throw new ValidationError(`the sealed value was made for sealing key ${keyId}, which the operator no longer holds (current key ${this.keys.current})`, [], {
        reason: 'SealedValueInvalid',
        hint: 'seal it again with `stk connections rotate` against this cluster',
      });
    }
    return unseal(key, sealed, binding);
  }

  private async load(): Promise<Keys> {
    return keysOf(await this.client.get<SecretObject>(Kinds.Secret, SEALING_SECRET, this.namespace));
  }
}

export interface RotationResult {
  previousKeyId: string;
  currentKeyId: string;
  /** keys that still open values: the current one and every retired one */
  retainedKeyIds: string[];
}

/**
 * Makes a new sealing key pair current and keeps the previous private key as retired. The
 * Secret is replaced with a resourceVersion precondition, so two rotations racing cannot lose a
 * key: the second one fails with a conflict and changes nothing. The certificate `stk` seals
 * with is published afterwards.
 */
export async function rotateSealingKey(client: KubeClient, namespace: string, log: Logger): Promise<RotationResult> {
  const secret = await client.get<SecretObject>(Kinds.Secret, SEALING_SECRET, namespace);
  const before = keysOf(secret);
  const { keyPem, certPem } = makeSealingKeyPair();
  const data: Record<string, string> = {};
  for (const [name, value] of Object.entries(secret.data ?? {})) if (name.startsWith(RETIRED_PREFIX)) data[name] = value;
  data[`${RETIRED_PREFIX}${before.current}.key`] = secret.data!['tls.key']!;
  data['tls.key'] = encode(keyPem);
  data['tls.crt'] = encode(certPem);
  await replaceSecret(client, namespace, secret, data);
  await writeSealingCertificate(client, namespace, certPem);
  const currentKeyId = sealingKeyId(certPem);
  log.info({ previousKeyId: before.current, currentKeyId }, 'sealing key rotated');
  return { previousKeyId: before.current, currentKeyId, retainedKeyIds: [currentKeyId, ...[...before.byId.keys()].sort()] };
}

/** Connections (all namespaces) whose sealed URL was made for one of the retired keys. */
export async function connectionsOnRetiredKeys(client: KubeClient, namespace: string): Promise<Array<{ connection: string; keyId: string }>> {
  const { current, byId } = keysOf(await client.get<SecretObject>(Kinds.Secret, SEALING_SECRET, namespace));
  const retired = new Set([...byId.keys()].filter((id) => id !== current));
  const { items } = await client.list<Connection & KubeObject>(Kinds.Connection);
  return items
    .filter((c) => retired.has(c.spec.sealedUrl?.keyId ?? ''))
    .map((c) => ({ connection: `${c.metadata.namespace}/${c.metadata.name}`, keyId: c.spec.sealedUrl?.keyId ?? '' }))
    .sort((a, b) => a.connection.localeCompare(b.connection));
}

/**
 * Drops the retired keys once no Connection in the cluster is sealed for one of them. Refuses
 * (and changes nothing) while any is: deleting the key would make that database unreachable.
 */
export async function dropRetiredSealingKeys(client: KubeClient, namespace: string, log: Logger): Promise<string[]> {
  const stale = await connectionsOnRetiredKeys(client, namespace);
  if (stale.length > 0) {
    throw new ConflictError(`${stale.length} connection(s) are still sealed for a retired key: ${stale.map((s) => `${s.connection} (key ${s.keyId})`).join(', ')}`, {
      reason: 'SealedForRetiredKey',
      hint: 'seal each again with `stk connections rotate --db-url -`, then retry',
    });
  }
  const secret = await client.get<SecretObject>(Kinds.Secret, SEALING_SECRET, namespace);
  const dropped = Object.keys(secret.data ?? {}).filter((n) => n.startsWith(RETIRED_PREFIX));
  if (dropped.length === 0) return [];
  const data = Object.fromEntries(Object.entries(secret.data ?? {}).filter(([n]) => !n.startsWith(RETIRED_PREFIX)));
  await replaceSecret(client, namespace, secret, data);
  const ids = dropped.map((n) => n.slice(RETIRED_PREFIX.length, -'.key'.length)).sort();
  log.info({ droppedKeyIds: ids }, 'retired sealing keys dropped');
  return ids;
}

async function replaceSecret(client: KubeClient, namespace: string, secret: SecretObject, data: Record<string, string>): Promise<void> {
  try {
    await client.request('PUT', KubeClient.path(Kinds.Secret, namespace, SEALING_SECRET), {
      body: { apiVersion: 'v1', kind: 'Secret', type: secret.type ?? 'kubernetes.io/tls', metadata: { ...secret.metadata, name: SEALING_SECRET, namespace }, data },
    });
  } catch (err) {
    if (err instanceof ConflictError) throw new ConflictError('the sealing key secret changed while this ran (another rotation?); nothing was changed, run it again', { reason: 'Conflict' });
    throw err;
  }
}
