import type { KeyCache } from '../cache/key-cache.ts';
import type { ErrorCode } from '../http/errors.ts';
import type { KeyFormat } from '../keys/format.ts';
import type { KeyHasher } from '../keys/hashing.ts';
import type { AuthKey, Tenant } from '../keys/types.ts';
import type { CachedVerification } from '../cache/key-cache.ts';
import type { Credential } from './credential.ts';

/** A refusal as data (the Unkey `verifyKey` shape): a machine code, a message, optional headers. */
export interface Denial {
  ok: false;
  code: ErrorCode;
  message: string;
  headers?: Record<string, string>;
}

export interface Identity {
  ok: true;
  key: AuthKey;
  tenant: Tenant;
  credential: Credential;
  /** The presented key's hash (what the cache and store know it by); never the key itself. */
  hash: string;
  /** When the presented value stops verifying (rotation grace), ms since epoch; null for never. */
  hashExpiresAt: number | null;
}

export type AuthResult = Identity | Denial;

export const deny = (code: ErrorCode, message: string, headers?: Record<string, string>): Denial => ({ ok: false, code, message, headers });

const missing = deny('missing_api_key', 'An API key is required: send it in the X-API-Key header or as a Bearer token.');
const invalid = deny('invalid_api_key', 'The API key is not valid.');

/** SPEC §5 step 7, in that order. */
export function statusOf(v: CachedVerification, credential: Credential, hash: string, now: number): AuthResult {
  if (v.tenant.status !== 'active') return deny('tenant_suspended', 'The tenant that owns this API key is suspended.');
  if (!v.key.policy.isActive) return deny('key_disabled', 'The API key is disabled.');
  if (v.key.expiresAt !== null && v.key.expiresAt <= now) return deny('key_expired', 'The API key has expired.');
  // The previous value of a rotated key stops at the end of its grace period, even if still cached.
  if (v.hashExpiresAt !== null && v.hashExpiresAt <= now) return invalid;
  return { ok: true, key: v.key, tenant: v.tenant, credential, hash, hashExpiresAt: v.hashExpiresAt };
}

export type Authenticator = (credential: Credential | null) => AuthResult | Promise<AuthResult>;

/**
 * SPEC §5 steps 4–7: credential present → prefix and checksum (no store call for a malformed key) → hash →
 * cache, then store → tenant and key status. Synchronous on a cache hit; throws StoreUnavailableError only.
 */
export function createAuthenticator(deps: { format: KeyFormat; hash: KeyHasher; cache: KeyCache }): Authenticator {
  const { format, hash, cache } = deps;
  return function authenticate(credential) {
    if (!credential) return missing;
    if (format.parse(credential.value) === null) return invalid;
    const digest = hash(credential.value);
    const cached = cache.peek(digest);
    if (cached !== undefined) return cached ? statusOf(cached, credential, digest, Date.now()) : invalid;
    return cache.get(digest).then((v) => (v ? statusOf(v, credential, digest, Date.now()) : invalid));
  };
}
