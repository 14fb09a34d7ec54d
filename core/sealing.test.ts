import { describe, expect, it } from 'vitest';
import { connectionBinding, connectionBindings, connectionObjectName, seal, sealingBinding, unseal, makeSealingKeyPair } from './sealing.ts';

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

  it('refuses an IV or a tag of another length (GCM would accept a truncated tag)', () => {
    const sealed = seal(certPem, url, binding);
    expect(Buffer.from(sealed.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(sealed.tag, 'base64')).toHaveLength(16);
    const shortTag = { ...sealed, tag: Buffer.from(sealed.tag, 'base64').subarray(0, 12).toString('base64') };
    expect(() => unseal(keyPem, shortTag, binding)).toThrow(/cannot be opened/);
    const longIv = { ...sealed, iv: Buffer.alloc(16).toString('base64') };
    expect(() => unseal(keyPem, longIv, binding)).toThrow(/cannot be opened/);
  });

  it("binds a Connection's sealed URL to its environment and name, not only to the object", () => {
    const where = { namespace: 'stk-demo', objectName: 'prod-eu-main', environment: 'prod', name: 'eu_main' };
    const sealed = seal(certPem, url, connectionBinding(where));
    expect(unseal(keyPem, sealed, connectionBindings(where))).toBe(url);
    // The same object re-created for another environment and connection does not open it.
    expect(() => unseal(keyPem, sealed, connectionBindings({ ...where, environment: 'prod-eu', name: 'main' }))).toThrow(/cannot be opened/);
  });

  it('still opens values sealed with the old binding, only on the object name they were made for', () => {
    const legacy = seal(certPem, url, sealingBinding('Connection', 'stk-demo', 'dev-main'));
    expect(unseal(keyPem, legacy, connectionBindings({ namespace: 'stk-demo', objectName: 'dev-main', environment: 'dev', name: 'main' }))).toBe(url);
    // A copy on an object whose name is not the plain join of its environment and name does not open.
    expect(() => unseal(keyPem, legacy, connectionBindings({ namespace: 'stk-demo', objectName: 'dev-main', environment: 'dev', name: 'other' }))).toThrow(/cannot be opened/);
  });

  it('names Connections without collisions and keeps unambiguous names as they were', () => {
    expect(connectionObjectName('dev', 'main')).toBe('dev-main');
    const a = connectionObjectName('prod', 'eu_main');
    const b = connectionObjectName('prod-eu', 'main');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^prod-eu-main-[0-9a-f]{10}$/);
    expect(b).toMatch(/^prod-eu-main-[0-9a-f]{10}$/);
    expect(connectionObjectName('prod', 'eu_main')).toBe(a);
    for (const n of [a, b, connectionObjectName('x'.repeat(40), `y${'_'.repeat(38)}z`)]) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});
