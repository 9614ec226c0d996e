import { createHmac, hash } from 'node:crypto';

/**
 * SHA-256 of the key, or HMAC-SHA-256 with the pepper when one is configured. Called, it gives the hash in hex:
 * what the store keeps and events name. `digest` gives the same 32 bytes as a 32-character latin1 string: what the
 * key cache keys its entries by (48 bytes of heap per cached key where the hex string takes 80), computed as
 * cheaply on the request path.
 */
export interface KeyHasher {
  (key: string): string;
  digest(key: string): string;
}

export function createKeyHasher(pepper: string | null): KeyHasher {
  // crypto.hash is the one-shot form: no Hash object per call, which matters on the hot path. ('binary' is
  // Node's name for latin1: one character per byte.)
  const hasher =
    pepper === null
      ? Object.assign((key: string) => hash('sha256', key, 'hex'), { digest: (key: string) => hash('sha256', key, 'binary') })
      : Object.assign((key: string) => createHmac('sha256', pepper).update(key).digest('hex'), { digest: (key: string) => createHmac('sha256', pepper).update(key).digest('binary') });
  return hasher;
}

/** Characters in a digest (`KeyHasher.digest`): one per byte of the hash. */
export const DIGEST_LENGTH = 32;

/** The digest of a hash given in hex (an event's, a store record's). */
export const digestOfHex = (hex: string): string => Buffer.from(hex, 'hex').toString('latin1');

/** The hex of a digest: how the store knows the hash. */
export const hexOfDigest = (digest: string): string => Buffer.from(digest, 'latin1').toString('hex');
