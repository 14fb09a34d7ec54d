/**
 * The API-key hashes the data plane verifies: exactly the scrypt parameters `stk apikey create`
 * writes (core/apikeys.ts: N=2^14, r=8, p=1, a 16-byte salt, a 32-byte digest). A key Secret with
 * any other parameters is treated as malformed: whoever can plant a Secret must not be able to
 * make each verification take gigabytes of memory or seconds of CPU. Raising the cost of new keys
 * means accepting the new parameters here in the same release.
 */
const ACCEPTED_HASH = /^scrypt\$v=1\$n=16384,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/;

/** True when a stored hash has the parameters the data plane agrees to verify. */
export function isAcceptedKeyHash(hash: string): boolean {
  return ACCEPTED_HASH.test(hash);
}
