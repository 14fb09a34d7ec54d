import { createPrivateKey, createPublicKey } from 'node:crypto';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../core/errors.ts';
import { assertUsablePrivateKey, ed25519KeyPair, generateSshKeyPair, hostKeyFingerprint } from './ssh.ts';

// A public key whose fingerprints `ssh-keygen -l -E sha256|md5` printed.
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0kY3n6sVh7c7cX6mF0xk5v1t3Yp0b2yH0mJtq3x1a deploy@example';

describe('ssh helpers', () => {
  it('computes the OpenSSH SHA256 fingerprint of a key blob', () => {
    const blob = Buffer.from(PUBLIC_KEY.split(' ')[1] ?? '', 'base64');
    expect(hostKeyFingerprint(blob)).toBe('SHA256:doHvmlczPYhxX5M1STwNs6dZwBQtdNgjpa8LHDsXEjs');
  });

  it('generates an Ed25519 pair whose private half parses and whose public half is one OpenSSH line', () => {
    const pair = generateSshKeyPair('santokit shop-staging');
    expect(pair.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=* santokit shop-staging$/);
    expect(() => assertUsablePrivateKey(pair.privateKey)).not.toThrow();
  });

  it('writes a key whose public half starts with a zero byte in full (ssh2 generated such keys malformed)', () => {
    // find a seed whose public key starts with 0x00 (about one in 256)
    let seed: Buffer | undefined;
    for (let i = 0; seed === undefined; i++) {
      const candidate = Buffer.alloc(32, 0);
      candidate.writeUInt32BE(i);
      const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), candidate]);
      const x = Buffer.from(createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' }).x ?? '', 'base64url');
      if (x[0] === 0) seed = candidate;
    }
    const pair = ed25519KeyPair(seed, 'zero-led', 0x01020304);

    expect(() => assertUsablePrivateKey(pair.privateKey)).not.toThrow();
    const parsed = ssh2.utils.parseKey(pair.privateKey);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key === undefined || key instanceof Error) throw new Error('unparsable');
    expect(key.getPublicSSH().toString('base64')).toBe(pair.publicKey.split(' ')[1]);
    expect(Buffer.from(pair.publicKey.split(' ')[1] ?? '', 'base64').readUInt32BE(15)).toBe(32);
    const data = Buffer.from('signed by the generated key');
    expect(key.verify(data, key.sign(data) as Buffer)).toBe(true);
  });

  it('generates keys that all parse and sign (1000 in a row)', () => {
    const unusable: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const pair = generateSshKeyPair('santokit-e2e');
      try {
        assertUsablePrivateKey(pair.privateKey);
      } catch {
        unusable.push(pair.publicKey);
      }
    }
    expect(unusable).toEqual([]);
  });

  it('rejects junk and public keys as private keys without quoting them', () => {
    for (const bad of ['', 'not a key', PUBLIC_KEY]) {
      let caught: unknown;
      try {
        assertUsablePrivateKey(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      if (bad !== '') expect((caught as Error).message).not.toContain(bad);
    }
  });
});
