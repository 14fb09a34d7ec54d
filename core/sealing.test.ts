import { describe, expect, it } from 'vitest';
import { makeSealingKeyPair } from '../operator/bootstrap.ts';
import { seal, sealingBinding, unseal } from './sealing.ts';

describe('sealing', () => {
  const { keyPem, certPem } = makeSealingKeyPair();
  const other = makeSealingKeyPair();
  const binding = sealingBinding('Connection', 'stk-demo', 'dev-main');
  const url = 'postgres://app:pa55word@db.example:5432/app';

  it('opens what was sealed for the same key and binding', () => {
    const sealed = seal(certPem, url, binding);
    expect(JSON.stringify(sealed)).not.toContain('pa55word');
    expect(unseal(keyPem, sealed, binding)).toBe(url);
  });

  it('refuses another binding (a sealed value replayed on another object) without saying more', () => {
    const sealed = seal(certPem, url, binding);
    expect(() => unseal(keyPem, sealed, sealingBinding('Connection', 'stk-demo', 'prod-main'))).toThrow(/cannot be opened/);
  });

  it('refuses another key and a tampered ciphertext', () => {
    const sealed = seal(certPem, url, binding);
    expect(() => unseal(other.keyPem, sealed, binding)).toThrow(/cannot be opened/);
    const tampered = { ...sealed, ciphertext: Buffer.from('x'.repeat(20)).toString('base64') };
    expect(() => unseal(keyPem, tampered, binding)).toThrow(/cannot be opened/);
  });
});
