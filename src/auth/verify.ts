import type { KeyCache } from '../cache/key-cache.ts';
import type { KeyFormat } from '../keys/format.ts';
import type { KeyHasher } from '../keys/hashing.ts';
import { looksLikeToken, type TokenClaims } from '../keys/session-token.ts';
import type { AuthKey, KeyPolicy, Tenant } from '../keys/types.ts';
import type { CachedVerification } from '../cache/key-cache.ts';
import type { Credential } from './credential.ts';
import { policyOf, rememberedOf, valueEndOf, type RememberedToken, type TokenReader } from './session-token.ts';
import { refuse, type StageRefusal } from './refusal.ts';

export { refuse, type StageRefusal };

export interface Identity {
  ok: true;
  /** The key that is charged for the request: the presented key, or the key that minted the session token. */
  key: AuthKey;
  tenant: Tenant;
  credential: Credential;
  /**
   * What the key cache knows the presented credential by: a key's digest (its hash as KeyHasher.digest gives it,
   * never the key itself), or for a session token its minting key's reference (auth/session-token.ts keyRefOf).
   */
  hash: string;
  /** When the presented value stops verifying (rotation grace), ms since epoch; null for never. */
  hashExpiresAt: number | null;
  /** What the request is authorised with: the key's policy, or a session token's narrowing of it. */
  policy: KeyPolicy;
  /** The session token that was presented, or null for a key. */
  token: TokenClaims | null;
}

export type AuthResult = Identity | StageRefusal;


const missing = refuse('missing_api_key', 'An API key is required: send it in the X-API-Key header or as a Bearer token.');
const invalid = refuse('invalid_api_key', 'The API key is not valid.');

/** The status checks of a verified key, in this order: tenant suspended, key disabled, key expired. */
export function statusOf(v: CachedVerification, credential: Credential, hash: string, now: number): AuthResult {
  if (v.tenant.status !== 'active') return refuse('tenant_suspended', 'The tenant that owns this API key is suspended.');
  if (!v.key.policy.isActive) return refuse('key_disabled', 'The API key is disabled.');
  if (v.key.expiresAt !== null && v.key.expiresAt <= now) return refuse('key_expired', 'The API key has expired.');
  // The previous value of a rotated key stops at the end of its grace period, even if still cached.
  if (v.hashExpiresAt !== null && v.hashExpiresAt <= now) return invalid;
  return { ok: true, key: v.key, tenant: v.tenant, credential, hash, hashExpiresAt: v.hashExpiresAt, policy: v.key.policy, token: null };
}

const uncovered = refuse('invalid_api_key', 'The session token is no longer covered by the key that minted it.');
const rotatedAway = refuse('invalid_api_key', 'The key value that minted this session token has been rotated away.');
const disabledSince = refuse('invalid_api_key', 'The key that minted this session token has been disabled since.');

/**
 * A session token's status: its minting key's (suspended tenant, disabled, expired: the token goes with the key),
 * whether the key value that minted it still works (rotated away, it takes its tokens), then whether the key still
 * covers what the token was narrowed to.
 */
export function tokenStatus(v: CachedVerification, credential: Credential, t: RememberedToken, now: number): AuthResult {
  const { claims } = t;
  if (v.tenant.id !== claims.tenantId) return invalid;
  const status = statusOf(v, credential, t.ref, now);
  if (!status.ok) return status;
  if (t.mintedAt < v.key.policy.tokensNotBefore) return disabledSince;
  const valueEnd = valueEndOf(t, v.key.policy, v.values);
  if (valueEnd !== null && valueEnd <= now) return rotatedAway;
  const policy = policyOf(t, v.key.policy);
  if (policy === null) return uncovered;
  // A live session opened with it ends when that value does, as one opened with the value itself would.
  status.hashExpiresAt = valueEnd;
  status.policy = policy;
  status.token = claims;
  return status;
}

/**
 * `identity`'s credential checked again against a fresh record of its key (live WebSocket sessions). A session's
 * token is judged on the claims it opened with: its expiry bounds when a session may open, not how long it lasts.
 */
export const reverify = (v: CachedVerification, identity: Identity, now: number): AuthResult =>
  identity.token ? tokenStatus(v, identity.credential, rememberedOf(identity.token), now) : statusOf(v, identity.credential, identity.hash, now);

export type Authenticator = (credential: Credential | null) => AuthResult | Promise<AuthResult>;

/**
 * Credential present → prefix and checksum (no store call for a malformed key) → hash →
 * cache, then store → tenant and key status. Synchronous on a cache hit; throws StoreUnavailableError only.
 */
export function createAuthenticator(deps: { format: KeyFormat; hash: KeyHasher; cache: KeyCache; tokens?: TokenReader | null }): Authenticator {
  const { format, hash, cache } = deps;
  const tokens = deps.tokens ?? null;

  /** A session token: its signature and expiry (no store call), then its minting key's record, cached. */
  function authenticateToken(credential: Credential): AuthResult | Promise<AuthResult> {
    const t = tokens?.read(credential.value);
    if (!t) return invalid;
    const cached = cache.peek(t.ref);
    if (cached !== undefined) return cached ? tokenStatus(cached, credential, t, Date.now()) : invalid;
    return cache.get(t.ref).then((v) => (v ? tokenStatus(v, credential, t, Date.now()) : invalid));
  }

  return function authenticate(credential) {
    if (!credential) return missing;
    if (looksLikeToken(credential.value)) return authenticateToken(credential);
    if (format.parse(credential.value) === null) return invalid;
    const digest = hash.digest(credential.value);
    const cached = cache.peek(digest);
    if (cached !== undefined) return cached ? statusOf(cached, credential, digest, Date.now()) : invalid;
    return cache.get(digest).then((v) => (v ? statusOf(v, credential, digest, Date.now()) : invalid));
  };
}
