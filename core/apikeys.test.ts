import { describe, expect, it } from 'vitest';
import {
  apiKeySecret,
  apiKeySecretName,
  generateApiKey,
  hashApiKey,
  isAcceptedApiKeyHash,
  keyIdOf,
  lastUsedPatch,
  parseRoles,
  readApiKeySecret,
  revocationPatch,
  verifyApiKey,
} from './apikeys.ts';
import { ValidationError } from './errors.ts';
import { redactSecrets } from './redact.ts';

describe('API key format', () => {
  it('embeds the key id, so a presented key is looked up by id', () => {
    const { keyId, apiKey } = generateApiKey();
    expect(keyId).toMatch(/^ak[0-9a-f]{16}$/);
    expect(apiKey.startsWith(`stk_${keyId}_`)).toBe(true);
    expect(keyIdOf(apiKey)).toBe(keyId);
  });

  it('generates distinct keys', () => {
    const keys = new Set(Array.from({ length: 50 }, () => generateApiKey().apiKey));
    expect(keys.size).toBe(50);
  });

  it.each(['', 'stk_', 'Bearer x', 'stk_akXYZ_abc', `stk_ak0123456789abcdef_${'a'.repeat(42)}`, `stk_ak0123456789abcdef_${'a'.repeat(43)}x`, `stk_ak0123456789abcdef_${'a'.repeat(42)}'`])(
    'rejects the malformed key %j',
    (text) => {
      expect(keyIdOf(text)).toBeUndefined();
    },
  );

  it('is scrubbed from free text by the shared redaction', () => {
    const { apiKey } = generateApiKey();
    expect(redactSecrets(`failed with ${apiKey} here`)).not.toContain(apiKey.slice(4));
  });
});

describe('hashing', () => {
  it('verifies the key it was made from and nothing else', async () => {
    const { apiKey } = generateApiKey();
    const other = generateApiKey().apiKey;
    const hash = await hashApiKey(apiKey);
    expect(hash).toMatch(/^scrypt\$v=1\$n=16384,r=8,p=1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(hash).not.toContain(apiKey.slice(4));
    expect(await verifyApiKey(apiKey, hash)).toBe(true);
    expect(await verifyApiKey(other, hash)).toBe(false);
  });

  it('salts every key: the same key hashes differently twice', async () => {
    const { apiKey } = generateApiKey();
    expect(await hashApiKey(apiKey)).not.toBe(await hashApiKey(apiKey));
  });

  it('refuses malformed or too costly stored parameters instead of running them', async () => {
    const { apiKey } = generateApiKey();
    const hash = await hashApiKey(apiKey);
    expect(await verifyApiKey(apiKey, hash.replace('n=16384', 'n=1048576'))).toBe(false);
    expect(await verifyApiKey(apiKey, hash.replace('n=16384', 'n=30000'))).toBe(false);
    expect(await verifyApiKey(apiKey, 'plaintext')).toBe(false);
    expect(await verifyApiKey(apiKey, '')).toBe(false);
  });

  it('accepts exactly the parameters stk writes, nothing cheaper or costlier', async () => {
    const hash = await hashApiKey(generateApiKey().apiKey);
    expect(isAcceptedApiKeyHash(hash)).toBe(true);
    for (const [from, to] of [
      ['n=16384', 'n=131072'],
      ['n=16384', 'n=1024'],
      ['r=8', 'r=16'],
      ['r=8', 'r=1'],
      ['p=1', 'p=4'],
    ]) {
      expect(isAcceptedApiKeyHash(hash.replace(from!, to!)), to).toBe(false);
    }
    const [, , , salt, digest] = hash.split('$');
    expect(isAcceptedApiKeyHash(hash.replace(salt!, `${salt}AAAA`))).toBe(false);
    expect(isAcceptedApiKeyHash(hash.replace(digest!, digest!.slice(0, 22)))).toBe(false);
  });
});

describe('the Secret layout', () => {
  const input = { namespace: 'stk-shop', project: 'shop', environment: 'dev', keyId: 'ak0123456789abcdef', name: 'web', roles: ['reader', 'writer'], hash: 'scrypt$v=1$…', createdAt: '2025-01-01T00:00:00.000Z' };

  it('labels the binding and stores only the hash, round-tripping through readApiKeySecret', () => {
    const secret = apiKeySecret(input);
    expect(secret.metadata.name).toBe(apiKeySecretName(input.keyId));
    expect(secret.metadata.labels).toMatchObject({ 'santokit.io/api-key': 'true', 'santokit.io/project': 'shop', 'santokit.io/environment': 'dev' });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['createdAt', 'hash', 'keyId', 'name', 'roles', 'status']);
    expect(readApiKeySecret(secret)).toMatchObject({ keyId: input.keyId, name: 'web', project: 'shop', environment: 'dev', roles: ['reader', 'writer'], status: 'active', hash: input.hash, lastUsedAt: undefined });
  });

  /** A JSON merge patch of `data`: null deletes a key. */
  const mergeData = (data: Record<string, string>, patch: Record<string, string | null>): Record<string, string> => {
    const out: Record<string, string> = { ...data };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = v;
    }
    return out;
  };

  it('reads revocation and lastUsedAt from the patches the CLI and bridge apply', () => {
    const secret = apiKeySecret(input);
    const revoked = { ...secret, data: mergeData(secret.data!, revocationPatch('2025-02-01T00:00:00.000Z').data), metadata: { ...secret.metadata, annotations: lastUsedPatch('2025-01-15T00:00:00.000Z').metadata.annotations } };
    expect(readApiKeySecret(revoked)).toMatchObject({ status: 'revoked', revokedAt: '2025-02-01T00:00:00.000Z', lastUsedAt: '2025-01-15T00:00:00.000Z', hash: '' });
  });

  it('revocation deletes the hash: patching the status back to active cannot revive the key', () => {
    const secret = apiKeySecret(input);
    const revoked = mergeData(secret.data!, revocationPatch('2025-02-01T00:00:00.000Z').data);
    expect(revoked.hash).toBeUndefined();
    const revived = { ...secret, data: { ...revoked, status: Buffer.from('active').toString('base64') } };
    expect(readApiKeySecret(revived)).toBeUndefined();
  });

  it('ignores Secrets that are not well-formed keys', () => {
    const secret = apiKeySecret(input);
    expect(readApiKeySecret({ ...secret, metadata: { ...secret.metadata, name: 'something-else' } })).toBeUndefined();
    expect(readApiKeySecret({ ...secret, metadata: { ...secret.metadata, labels: {} } })).toBeUndefined();
    expect(readApiKeySecret({ ...secret, data: { ...secret.data, status: Buffer.from('maybe').toString('base64') } })).toBeUndefined();
  });
});

describe('parseRoles', () => {
  it('splits, trims and de-duplicates', () => {
    expect(parseRoles(' reader, writer,reader ')).toEqual(['reader', 'writer']);
  });
  it.each(['', ',', 'bad role', 'x'.repeat(64)])('rejects %j', (text) => {
    expect(() => parseRoles(text)).toThrow(ValidationError);
  });
});
