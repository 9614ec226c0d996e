import { createHmac, hash } from 'node:crypto';

/** SHA-256 of the key, or HMAC-SHA-256 with the pepper when one is configured. Hex. */
export type KeyHasher = (key: string) => string;

export function createKeyHasher(pepper: string | null): KeyHasher {
  // crypto.hash is the one-shot form: no Hash object per call, which matters on the hot path.
  if (pepper === null) return (key) => hash('sha256', key, 'hex');
  return (key) => createHmac('sha256', pepper).update(key).digest('hex');
}
