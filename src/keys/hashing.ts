import { createHash, createHmac } from 'node:crypto';

/** SHA-256 of the key, or HMAC-SHA-256 with the pepper when one is configured (SPEC §2). Hex. */
export type KeyHasher = (key: string) => string;

export function createKeyHasher(pepper: string | null): KeyHasher {
  if (pepper === null) return (key) => createHash('sha256').update(key).digest('hex');
  return (key) => createHmac('sha256', pepper).update(key).digest('hex');
}
