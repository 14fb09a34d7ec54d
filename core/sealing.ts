import { createDecipheriv, createHash, privateDecrypt, constants } from 'node:crypto';
import forge from 'node-forge';
import type { SealedValue } from './api/resources.ts';
import { ValidationError } from './errors.ts';

/**
 * Sealed values: a secret encrypted client-side with the operator's public certificate so the
 * resource holding it can live in Git. A fresh AES-256-GCM key encrypts the value; RSA-OAEP with
 * SHA-256 (and MGF1-SHA-256; node-forge would default to SHA-1) wraps that key. The binding
 * (namespace and object name) is the GCM additional data, so a sealed value copied to another
 * object does not open.
 */

/** What a sealed value is bound to: `santokit.io/<kind>:<namespace>/<name>`. */
export function sealingBinding(kind: string, namespace: string, name: string): string {
  return `santokit.io/${kind}:${namespace}/${name}`;
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
  const iv = forge.random.getBytesSync(12);
  const cipher = forge.cipher.createCipher('AES-GCM', key);
  cipher.start({ iv, additionalData: binding, tagLength: 128 });
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

/** Opens a sealed value with the operator's private key (Node's crypto; runs in the operator). */
export function unseal(privateKeyPem: string, sealed: SealedValue, binding: string): string {
  try {
    const key = privateDecrypt({ key: privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(sealed.encryptedKey, 'base64'));
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(binding, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    // Never say more: the cause could only help someone probing the key.
    throw new ValidationError('the sealed value cannot be opened: it was sealed for another key or another object', [], {
      reason: 'SealedValueInvalid',
      hint: 'seal it again with `stk connections set` (or `rotate`) against this cluster',
    });
  }
}
