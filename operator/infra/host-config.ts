import { API_VERSION, Kinds, type InfraHost, type SecretKeyRef } from '../../core/api/resources.ts';
import { ValidationError } from '../../core/errors.ts';
import { dropletName } from '../../core/infra/hosts.ts';
import { isAlreadyExists, type KubeClient, type KubeObject } from '../../core/kube/client.ts';
import type { ProviderKey } from './external.ts';
import type { CloudProvider } from './provider.ts';
import { generateSshKeyPair } from './ssh.ts';

/**
 * The configuration of one InfraHost, read from Secrets before any cloud API call: the provider
 * token, the SSH key (a named provider key with its private half in a Secret, or a generated pair
 * kept in the Secret `infrahost-<name>-ssh`, owned by the resource) and the Tailscale auth key.
 * Anything missing is a ValidationError with reason ConfigInvalid that names the Secret, never
 * its value. Values are held in memory for one pass only.
 */

export interface HostConfig {
  readonly token: string;
  readonly privateKey: string;
  /** the provider key's name */
  readonly sshKeyName: string;
  /** set for generated keys: registered at the provider when missing */
  readonly publicKey?: string;
  readonly tailscaleAuthKey?: string;
}

type Obj = InfraHost & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

export const CONFIG_INVALID_REASON = 'ConfigInvalid';

/** The Secret that keeps a generated key pair. */
export function generatedKeySecretName(infraHostName: string): string {
  return `infrahost-${infraHostName}-ssh`;
}

/**
 * Every Secret an InfraHost names (`namespace/name`): the token, the SSH private key, the
 * Tailscale auth key. The generated key's Secret is the operator's own and is not listed.
 */
export function referencedSecrets(o: Obj): string[] {
  const namespace = o.metadata.namespace ?? '';
  const spec = o.spec;
  const names = [spec.credentialsSecretRef?.name, spec.sshKey?.privateKeySecretRef?.name, spec.bootstrap?.tailscale?.authKeySecretRef?.name];
  return [...new Set(names.filter((n): n is string => typeof n === 'string' && n !== '').map((n) => `${namespace}/${n}`))].sort();
}

export function configInvalid(message: string, hint?: string): ValidationError {
  return new ValidationError(message, [], { reason: CONFIG_INVALID_REASON, ...(hint === undefined ? {} : { hint }) });
}

export function describeRef(ref: SecretKeyRef): string {
  return `${ref.name} (key ${ref.key})`;
}

/** Reads every Secret the host needs; a missing one is a ValidationError naming it (never its value). */
export async function loadHostConfig(client: KubeClient, o: Obj): Promise<HostConfig> {
  const namespace = o.metadata.namespace ?? '';
  const spec = o.spec;
  if (spec.provider !== 'digitalocean') throw configInvalid(`provider "${String(spec.provider)}" is not supported`);
  const token = await secretValue(client, namespace, spec.credentialsSecretRef);
  if (token === undefined) {
    throw configInvalid(`the DigitalOcean token Secret ${describeRef(spec.credentialsSecretRef)} is missing in namespace ${namespace}`, 'create it: kubectl create secret generic <name> --from-literal=<key>=<token>');
  }

  let privateKey: string;
  let sshKeyName: string;
  let publicKey: string | undefined;
  if (spec.sshKey.generate === true) {
    const pair = await generatedKey(client, o);
    privateKey = pair.privateKey;
    publicKey = pair.publicKey;
    sshKeyName = dropletName(spec.project, spec.environment, spec.host);
  } else {
    const ref = spec.sshKey.privateKeySecretRef;
    if (spec.sshKey.name === undefined || ref === undefined) throw configInvalid('sshKey needs name and privateKeySecretRef, or generate: true');
    const value = await secretValue(client, namespace, ref);
    if (value === undefined) throw configInvalid(`the SSH private key Secret ${describeRef(ref)} is missing in namespace ${namespace}`);
    privateKey = value;
    sshKeyName = spec.sshKey.name;
  }

  let tailscaleAuthKey: string | undefined;
  const ts = spec.bootstrap?.tailscale;
  if (ts !== undefined) {
    tailscaleAuthKey = await secretValue(client, namespace, ts.authKeySecretRef);
    if (tailscaleAuthKey === undefined) throw configInvalid(`the Tailscale auth key Secret ${describeRef(ts.authKeySecretRef)} is missing in namespace ${namespace}`);
  }
  return { token: token.trim(), privateKey, sshKeyName, ...(publicKey === undefined ? {} : { publicKey }), ...(tailscaleAuthKey === undefined ? {} : { tailscaleAuthKey: tailscaleAuthKey.trim() }) };
}

/** One key of a Secret, decoded; undefined when the Secret or the key is missing or blank. */
export async function secretValue(client: KubeClient, namespace: string, ref: SecretKeyRef): Promise<string | undefined> {
  const secret = await client.find<Secret>(Kinds.Secret, ref.name, namespace);
  const raw = secret?.data?.[ref.key];
  if (raw === undefined) return undefined;
  const value = Buffer.from(raw, 'base64').toString('utf8');
  return value.trim() === '' ? undefined : value;
}

/**
 * The generated key pair of a host, kept in the Secret `infrahost-<name>-ssh` (type
 * kubernetes.io/ssh-auth, owned by the InfraHost so it goes with it). Made once.
 */
async function generatedKey(client: KubeClient, o: Obj): Promise<{ privateKey: string; publicKey: string }> {
  const namespace = o.metadata.namespace ?? '';
  const name = generatedKeySecretName(o.metadata.name);
  const read = (s: Secret | undefined) => {
    const priv = s?.data?.['ssh-privatekey'];
    const pub = s?.data?.['ssh-publickey'];
    return priv === undefined || pub === undefined ? undefined : { privateKey: Buffer.from(priv, 'base64').toString('utf8'), publicKey: Buffer.from(pub, 'base64').toString('utf8').trim() };
  };
  const existing = read(await client.find<Secret>(Kinds.Secret, name, namespace));
  if (existing !== undefined) return existing;
  const pair = generateSshKeyPair(`santokit ${dropletName(o.spec.project, o.spec.environment, o.spec.host)}`);
  try {
    await client.create<Secret>(Kinds.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'santokit' },
        ownerReferences: [{ apiVersion: API_VERSION, kind: 'InfraHost', name: o.metadata.name, uid: o.metadata.uid ?? '', controller: true }],
      },
      type: 'kubernetes.io/ssh-auth',
      data: { 'ssh-privatekey': Buffer.from(pair.privateKey).toString('base64'), 'ssh-publickey': Buffer.from(`${pair.publicKey}\n`).toString('base64') },
    } as Secret);
    return pair;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const raced = read(await client.find<Secret>(Kinds.Secret, name, namespace));
    if (raced === undefined) throw configInvalid(`the Secret ${namespace}/${name} exists but holds no ssh-privatekey/ssh-publickey`);
    return raced;
  }
}

/**
 * The provider's id and fingerprint of the host's SSH key; registers a generated key when missing
 * (`registered` is then set). A named key that is not registered is ConfigInvalid.
 */
export async function resolveProviderKey(provider: CloudProvider, config: HostConfig): Promise<ProviderKey & { registered?: true }> {
  const found = await provider.findSshKeyByName(config.sshKeyName);
  if (config.publicKey === undefined) {
    if (found === undefined) {
      throw configInvalid(`no SSH key named "${config.sshKeyName}" is registered at DigitalOcean`, 'register the public key under that name, or use sshKey: { generate: true }');
    }
    return { id: found.id, fingerprint: found.fingerprint };
  }
  if (found !== undefined) {
    if (keyBlob(found.publicKey) !== keyBlob(config.publicKey)) {
      throw configInvalid(`an SSH key named "${config.sshKeyName}" is registered at DigitalOcean with another public key`, 'rename or delete that key at DigitalOcean; Santokit registers its generated key under the droplet name');
    }
    return { id: found.id, fingerprint: found.fingerprint };
  }
  const created = await provider.createSshKey(config.sshKeyName, config.publicKey);
  return { id: created.id, fingerprint: created.fingerprint, registered: true };
}

function keyBlob(publicKey: string): string {
  return publicKey.trim().split(/\s+/)[1] ?? '';
}
