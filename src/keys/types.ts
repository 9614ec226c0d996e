import type { KeyType } from './format.ts';

export interface RateLimitSettings {
  requestsPerMinute: number | null;
  requestsPerDay: number | null;
}

/** Monthly quotas of a key (calendar month, UTC); null = none of its own (the plan's still applies). */
export interface QuotaSettings {
  requestsPerMonth: number | null;
  sessionMinutesPerMonth: number | null;
}

/** The fields of a key's rate limit and of its monthly quota, each at most its plan's maximum. */
export const LIMIT_FIELDS = ['requestsPerMinute', 'requestsPerDay'] as const satisfies ReadonlyArray<keyof RateLimitSettings>;
export const QUOTA_FIELDS = ['requestsPerMonth', 'sessionMinutesPerMonth'] as const satisfies ReadonlyArray<keyof QuotaSettings>;

/**
 * A creator of a key, with the monthly quotas it held when the key was made. A key's traffic and session time
 * count against its own quotas and against every one of its creator chain's (minting cannot create quota: a
 * child revoked and minted again starts no fresh count), so the chain is kept on the key, oldest creator first.
 */
export interface QuotaOwner extends QuotaSettings {
  keyId: string;
}

/** The longest creator chain with quotas a key may have; a key at the end of one cannot create keys. */
export const MAX_QUOTA_CHAIN = 8;

const NO_CHAIN: readonly QuotaOwner[] = Object.freeze([]);

/** A key stored before quotas existed has none of its own. */
export const NO_QUOTA: QuotaSettings = Object.freeze({ requestsPerMonth: null, sessionMinutesPerMonth: null });

/** What every read returns. */
export interface ApiKey {
  id: string;
  tenantId: string;
  name: string | null;
  keyType: KeyType;
  prefix: string;
  permissions: string[];
  allowedOrigins: string[] | null;
  allowedAssistants: string[] | null;
  transientAssistant: boolean;
  rateLimit: RateLimitSettings;
  quota: QuotaSettings;
  maxConcurrentConnections: number | null;
  enforceMtls: boolean;
  clientCertFingerprints: string[] | null;
  metadata: Record<string, unknown>;
  isActive: boolean;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdBy: string;
}

/** A hash that verifies this key; `expiresAt` is set on the old value during a rotation grace period. */
export interface KeyHash {
  hash: string;
  expiresAt: string | null;
}

/** The stored record: the public fields plus the hashes. Never leaves the process as-is. */
export interface StoredKey extends ApiKey {
  hashes: KeyHash[];
  /** The creators with a monthly quota (QuotaOwner), oldest first; absent for a key made by the admin or before chains. */
  quotaChain?: QuotaOwner[];
  /** When the key was last disabled: session tokens it minted before then stay dead when it is enabled again. */
  tokensNotBefore?: string | null;
  /**
   * The last rotation: session tokens minted before it (`issuedBefore`) stop when the value then current stops
   * (`at`, the end of its grace period), as that value does. Rotating again folds `issuedBefore` into
   * `tokensNotBefore`: tokens older than the previous rotation stop at once.
   */
  tokensRetiring?: TokensRetiring<string> | null;
}

/** Tokens minted before `issuedBefore` stop working at `at`. */
export interface TokensRetiring<T extends string | number> {
  issuedBefore: T;
  at: T;
}

export interface Tenant {
  id: string;
  name: string;
  plan: string;
  maxKeys: number;
  status: 'active' | 'suspended';
  createdAt: string;
  updatedAt: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  action: string;
  actor: string;
  keyId: string | null;
  details: Record<string, unknown>;
}

export const toApiKey = ({ hashes: _hashes, quotaChain: _chain, tokensNotBefore: _tokens, tokensRetiring: _retiring, ...key }: StoredKey): ApiKey => ({ ...key, quota: key.quota ?? NO_QUOTA });

/**
 * What authorising a request reads of a key besides its id and expiry, with the values the hot path would
 * otherwise recompute on every request worked out once per load. Most keys of a tenant hold the same, so the
 * cache keeps one object per distinct policy (memory: bench/README.md).
 */
export interface KeyPolicy
  extends Pick<
    ApiKey,
    | 'permissions'
    | 'allowedOrigins'
    | 'allowedAssistants'
    | 'transientAssistant'
    | 'rateLimit'
    | 'quota'
    | 'maxConcurrentConnections'
    | 'enforceMtls'
    | 'clientCertFingerprints'
    | 'isActive'
  > {
  /** `session` for a session token's requests (forwarded as X-Api-Key-Type); a key's own type otherwise. */
  keyType: KeyType | 'session';
  /** `X-Api-Key-Permissions` as forwarded: the permissions joined once. */
  permissionsHeader: string;
  /** ms since epoch: session tokens issued before it are dead (the key was disabled since); 0 for none. */
  tokensNotBefore: number;
  /** ms since epoch: session tokens minted before the last rotation, and when they stop; null for none. */
  tokensRetiring: TokensRetiring<number> | null;
  /** The creators whose monthly quotas this key's use counts against too (StoredKey.quotaChain). */
  quotaChain: readonly QuotaOwner[];
}

/** A key as the in-process cache holds it: what is its own, and its (shared) policy. */
export interface AuthKey {
  id: string;
  /** ms since epoch; null for never. */
  expiresAt: number | null;
  policy: KeyPolicy;
  /**
   * What the rate limits keep for this record (limits/rate-limits.ts: its windows and leases), set on its first
   * charge and gone with the record; undefined until then. Not part of the key's value: a record read again
   * equals the cached one without it (cache/key-cache.ts sameRecord compares the fields above).
   */
  limits?: unknown;
}

/** The cached form of a stored key. */
export const toAuthKey = (k: ApiKey & Pick<StoredKey, 'quotaChain' | 'tokensNotBefore' | 'tokensRetiring'>): AuthKey => ({
  id: k.id,
  expiresAt: k.expiresAt === null ? null : Date.parse(k.expiresAt),
  policy: {
    keyType: k.keyType,
    permissions: k.permissions,
    allowedOrigins: k.allowedOrigins,
    allowedAssistants: k.allowedAssistants,
    transientAssistant: k.transientAssistant,
    rateLimit: k.rateLimit,
    quota: k.quota ?? NO_QUOTA,
    maxConcurrentConnections: k.maxConcurrentConnections,
    enforceMtls: k.enforceMtls,
    clientCertFingerprints: k.clientCertFingerprints,
    isActive: k.isActive,
    permissionsHeader: k.permissions.join(','),
    quotaChain: k.quotaChain ?? NO_CHAIN,
    tokensNotBefore: k.tokensNotBefore ? Date.parse(k.tokensNotBefore) : 0,
    tokensRetiring: k.tokensRetiring ? { issuedBefore: Date.parse(k.tokensRetiring.issuedBefore), at: Date.parse(k.tokensRetiring.at) } : null,
  },
  // A field from the start, so that V8 keeps it in the object (one added later costs a separate property store).
  limits: undefined,
});
