import { LRUCache } from 'lru-cache';
import type { KeyPolicy } from '../keys/types.ts';
import type { KeyValue } from '../cache/key-cache.ts';
import { mintedAt, type TokenClaims, type TokenVerifier } from '../keys/session-token.ts';
import { originAllowed } from './origin.ts';
import { notCovered } from './permissions.ts';

// What a session token may do: what it was narrowed to at minting, as long as its minting key still covers that.
// A token that did not narrow a dimension follows the key's current value; one that did stays at its own value,
// and dies (verifies as invalid) once the key no longer covers it — a key narrowed below its tokens takes them
// with it, as revoking, disabling or expiring the key does.

/** The cache key of a minting key's record in the key cache (KeyCache loads it by tenant and key id). */
export const keyRefOf = (claims: Pick<TokenClaims, 'tenantId' | 'keyId'>): string => `#${claims.tenantId}/${claims.keyId}`;

/** Whether `inner` asks for nothing outside `outer` (null: unrestricted). */
export const within = (outer: readonly string[] | null, inner: readonly string[]): boolean => outer === null || inner.every((x) => outer.includes(x));
/** The same for origins: an exact origin within one of `outer`'s patterns counts as within. */
export const originsWithin = (outer: readonly string[] | null, inner: readonly string[]): boolean =>
  outer === null || inner.every((o) => outer.includes(o) || (!o.includes('*') && originAllowed(outer, o)));

/** The policy a token's requests are authorised with; null when the key no longer covers the token. */
export function tokenPolicy(key: KeyPolicy, claims: TokenClaims): KeyPolicy | null {
  if (claims.permissions && notCovered(key.permissions, claims.permissions).length > 0) return null;
  if (claims.allowedAssistants && !within(key.allowedAssistants, claims.allowedAssistants)) return null;
  if (claims.allowedOrigins && !originsWithin(key.allowedOrigins, claims.allowedOrigins)) return null;
  const permissions = claims.permissions ?? key.permissions;
  return {
    ...key,
    keyType: 'session',
    permissions,
    permissionsHeader: permissions.join(','),
    allowedAssistants: claims.allowedAssistants ?? key.allowedAssistants,
    allowedOrigins: claims.allowedOrigins ?? key.allowedOrigins,
  };
}

/**
 * A verified token as remembered between its requests: its claims, its minting key's cache reference, and its
 * policy as last worked out against one key policy object (cached policies are shared and never mutated, so the
 * same object means the same policy).
 */
export interface RememberedToken {
  claims: TokenClaims;
  /** ms since epoch (from its id): a token's `issuedAt` is in seconds, too coarse to tell it from a rotation. */
  mintedAt: number;
  ref: string;
  base: KeyPolicy | null;
  policy: KeyPolicy | null;
}

export const rememberedOf = (claims: TokenClaims): RememberedToken => ({ claims, mintedAt: mintedAt(claims), ref: keyRefOf(claims), base: null, policy: null });

/**
 * When the key value behind a token stops (ms since epoch; 0 when it already has), or null for not before the
 * key does: the value it was minted with must still be one of the key's `values` (the minting key's cached entry
 * has them), until that value's end; a token minted by the admin (no value) stops with the value current when it
 * was minted, if the key has been rotated since. A token never outlives the value that minted it.
 */
export function valueEndOf(t: RememberedToken, key: KeyPolicy, values: readonly KeyValue[] | undefined): number | null {
  const retiring = key.tokensRetiring;
  let end = retiring !== null && t.mintedAt < retiring.issuedBefore ? retiring.at : Infinity;
  if (t.claims.valueEndsAt !== null) end = Math.min(end, t.claims.valueEndsAt);
  // Minted with a value: it must still be one of the key's values, however the mint and a rotation raced.
  const tag = t.claims.valueTag;
  if (tag !== null && values !== undefined) {
    const value = values.find((x) => x.tag === tag);
    end = value === undefined ? 0 : Math.min(end, value.until ?? Infinity);
  }
  return end === Infinity ? null : end;
}

/** The token's policy against its minting key's current policy, worked out again only when that policy changed. */
export function policyOf(t: RememberedToken, key: KeyPolicy): KeyPolicy | null {
  if (t.base !== key) {
    t.base = key;
    t.policy = tokenPolicy(key, t.claims);
  }
  return t.policy;
}

/** Tokens remembered at once (each until it expires): beyond that the oldest is verified again when it returns. */
export const REMEMBERED_TOKENS = 10_000;

export interface TokenReader {
  /** A valid, unexpired token, remembered; null for anything else. No store call. */
  read(token: string): RememberedToken | null;
}

/**
 * Verifies tokens and remembers the verified ones until they expire, so a token used for every request of a
 * session costs one map lookup after its first request, not an HMAC and a JSON parse each time.
 */
export function createTokenReader(verifier: TokenVerifier, max = REMEMBERED_TOKENS): TokenReader {
  const seen = new LRUCache<string, RememberedToken>({ max, ttlAutopurge: false });
  return {
    read(token) {
      const now = Date.now();
      const have = seen.get(token);
      if (have) return have.claims.expiresAt * 1000 > now ? have : null;
      const claims = verifier.verify(token, Math.floor(now / 1000));
      if (!claims) return null;
      const t = rememberedOf(claims);
      seen.set(token, t, { ttl: claims.expiresAt * 1000 - now });
      return t;
    },
  };
}
