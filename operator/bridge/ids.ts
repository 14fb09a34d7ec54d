import { randomBytes, randomUUID } from 'node:crypto';
import type { IdGenerate } from '../../core/schema/ir.ts';

/**
 * Row ids the data plane generates, per the table's id policy. All from node:crypto, no
 * dependency: the formats are small and fully specified.
 * - ulid: 48-bit millisecond time + 80 random bits, Crockford base32, 26 characters (ulid spec)
 * - uuid_v4: random (RFC 9562 §5.4)
 * - uuid_v7: 48-bit millisecond time, version 7, 74 random bits (RFC 9562 §5.7)
 * - nanoid: 21 characters of the URL-safe alphabet (126 random bits)
 * `auto_increment` ids come from the database and `client` ids from the caller.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

/** A ULID for time `now` (ms since the epoch). */
export function ulid(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  // 80 random bits → 16 groups of 5 bits
  const bytes = randomBytes(10);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let random = '';
  for (let i = 0; i < 16; i++) {
    random = CROCKFORD[Number(bits & 31n)]! + random;
    bits >>= 5n;
  }
  return time + random;
}

/** A version 7 UUID for time `now` (ms since the epoch). */
export function uuidV7(now = Date.now()): string {
  const bytes = randomBytes(16);
  const ms = BigInt(now);
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A 21-character nanoid (64-letter alphabet: every byte's low 6 bits, no bias). */
export function nanoid(size = 21): string {
  const bytes = randomBytes(size);
  let out = '';
  for (const b of bytes) out += URL_ALPHABET[b & 63];
  return out;
}

/** The id the data plane generates under a policy, or undefined when it does not generate one. */
export function generateId(policy: IdGenerate): string | undefined {
  switch (policy) {
    case 'ulid':
      return ulid();
    case 'uuid_v4':
      return randomUUID();
    case 'uuid_v7':
      return uuidV7();
    case 'nanoid':
      return nanoid();
    case 'auto_increment':
    case 'client':
      return undefined;
  }
}
