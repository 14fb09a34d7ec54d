import { createDecipheriv, createHash, generateKeyPairSync, privateDecrypt, constants } from 'node:crypto';
import forge from 'node-forge';
import type { SealedValue } from './api/resources.ts';
import { ValidationError } from './errors.ts';

/**
 * Sealed values: a secret encrypted client-side with the operator's public certificate so the
 * resource holding it can live in Git. A fresh AES-256-GCM key encrypts the value; RSA-OAEP with
 * SHA-256 (and MGF1-SHA-256; node-forge would default to SHA-1) wraps that key. The binding is
 * the GCM additional data, so a sealed value copied to another object does not open. The IV is
 * 12 bytes and the tag 16, and opening refuses anything else (GCM would accept shorter tags).
 *
 * A Connection's binding names its namespace, its object name and the two fields the operator and
 * the data plane route by, `spec.environment` and `spec.name` (`connectionBinding`). Values sealed
 * before that (namespace and object name only) still open, but only on an object whose name is the
 * plain join of environment and name they were made for (`connectionBindings`); `stk connections
 * rotate` seals them again with the full binding.
 */

/** The IV and tag lengths of AES-256-GCM that seal writes and unseal accepts. */
export const SEALING_IV_BYTES = 12;
export const SEALING_TAG_BYTES = 16;

/** What a sealed value is bound to: `santokit.io/<kind>:<namespace>/<name>` (the binding of values sealed before environment and name were bound). */
export function sealingBinding(kind: string, namespace: string, name: string): string {
  return `santokit.io/${kind}:${namespace}/${name}`;
}

/** What identifies a Connection for sealing: where it lives and what it routes to. */
export interface ConnectionIdentity {
  readonly namespace: string;
  /** metadata.name */
  readonly objectName: string;
  /** spec.environment */
  readonly environment: string;
  /** spec.name */
  readonly name: string;
}

/** The binding of a Connection's sealed URL: namespace, object name, environment and connection name. */
export function connectionBinding(c: ConnectionIdentity): string {
  return `${sealingBinding('Connection', c.namespace, c.objectName)}#environment=${c.environment};name=${c.name}`;
}

/**
 * The bindings a Connection's sealed URL may have been made with, newest first: the full binding,
 * and the namespace/object binding of older values only when the object name is the plain join of
 * environment and name (what `stk` named every Connection before names became collision-free).
 */
export function connectionBindings(c: ConnectionIdentity): string[] {
  const bindings = [connectionBinding(c)];
  if (c.objectName === plainConnectionObjectName(c.environment, c.name)) bindings.push(sealingBinding('Connection', c.namespace, c.objectName));
  return bindings;
}

/** `<env>-<name>` with `_` as `-`: the object name of every Connection before names became collision-free. */
export function plainConnectionObjectName(environment: string, name: string): string {
  return `${environment}-${name}`.replace(/_/g, '-');
}

/**
 * The object name of the Connection `name` of `environment`. The plain join `<env>-<name>` is kept
 * when it cannot be read two ways (no `-` in the environment, no `-` or `_` in the name); otherwise
 * a short hash of both is appended, so `prod`+`eu_main` and `prod-eu`+`main` get different names.
 */
export function connectionObjectName(environment: string, name: string): string {
  const plain = plainConnectionObjectName(environment, name);
  if (!environment.includes('-') && !/[-_]/.test(name)) return plain;
  return `${plain}-${createHash('sha256').update(`${environment}/${name}`).digest('hex').slice(0, 10)}`;
}

/** A short, stable id of a sealing certificate, so a sealed value names the key it was made for. */
export function sealingKeyId(certPem: string): string {
  return createHash('sha256').update(certPem.trim()).digest('hex').slice(0, 16);
}

/** Seals `plaintext` for the holder of the certificate's private key (node-forge; runs in the CLI). */
export function seal(certPem: string, plaintext: string, binding: string): SealedValue {
  const cert = forge.pki.certificateFromPem(certPem);
  const publicKey = cert.publicKey as forge.pki.rsa.PublicKey;
  const key = forge.random.getBytesSync(32);
  const iv = forge.random.getBytesSync(SEALING_IV_BYTES);
  const cipher = forge.cipher.createCipher('AES-GCM', key);
  cipher.start({ iv, additionalData: binding, tagLength: SEALING_TAG_BYTES * 8 });
  cipher.update(forge.util.createBuffer(forge.util.encodeUtf8(plaintext)));
  cipher.finish();
  const encryptedKey = publicKey.encrypt(key, 'RSA-OAEP', { md: forge.md.sha256.create(), mgf1: { md: forge.md.sha256.create() } });
  return {
    keyId: sealingKeyId(certPem),
    encryptedKey: forge.util.encode64(encryptedKey),
    iv: forge.util.encode64(iv),
    ciphertext: forge.util.encode64(cipher.output.getBytes()),
    tag: forge.util.encode64(cipher.mode.tag.getBytes()),
  };
}

/**
 * Opens a sealed value with the operator's private key (Node's crypto; runs in the operator).
 * `binding` may list several candidates (see `connectionBindings`): the first that authenticates wins.
 */
export function unseal(privateKeyPem: string, sealed: SealedValue, binding: string | readonly string[]): string {
  const cannotOpen = () =>
    // Never say more: the cause could only help someone probing the key.
    new ValidationError('the sealed value cannot be opened: it was sealed for another key or another object', [], {
      reason: 'SealedValueInvalid',
      hint: 'seal it again with `stk connections set` (or `rotate`) against this cluster',
    });
  let key: Buffer;
  const iv = Buffer.from(sealed.iv, 'base64');
  const tag = Buffer.from(sealed.tag, 'base64');
  const ciphertext = Buffer.from(sealed.ciphertext, 'base64');
  try {
    key = privateDecrypt({ key: privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(sealed.encryptedKey, 'base64'));
  } catch {
    throw cannotOpen();
  }
  if (key.length !== 32 || iv.length !== SEALING_IV_BYTES || tag.length !== SEALING_TAG_BYTES) throw cannotOpen();
  for (const aad of typeof binding === 'string' ? [binding] : binding) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: SEALING_TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      // try the next binding
    }
  }
  throw cannotOpen();
}

/** A 3072-bit RSA key (generated by Node's crypto, which is fast) and a self-signed certificate made with node-forge. */
export function makeSealingKeyPair(now: Date = new Date()): { keyPem: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 3072,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = `01${createHash('sha256').update(publicKey).digest('hex').slice(0, 30)}`;
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000);
  const subject = [{ name: 'commonName', value: 'santokit-sealing' }, { name: 'organizationName', value: 'santokit.io' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', keyEncipherment: true, dataEncipherment: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { keyPem: privateKey, certPem: forge.pki.certificateToPem(cert) };
}
