import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../core/errors.ts';
import { assertUsablePrivateKey, generateSshKeyPair, hostKeyFingerprint } from './ssh.ts';

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
