import { originAllowed } from '../auth/origin.ts';
import { notCovered } from '../auth/permissions.ts';
import { LIMIT_FIELDS, NO_QUOTA, QUOTA_FIELDS, type AuthKey, type QuotaSettings, type RateLimitSettings, type StoredKey } from '../keys/types.ts';

// What a key may do, in every dimension in which one key can be narrower than another (the rule "Authority over
// keys"): its permissions, the restrictions it was given, and its limits (rate limits, session cap, monthly
// quotas). A key that could read, rotate or create a key wider than itself in any of them could shed what it was
// given — rotate an unrestricted key and use its new value, mint a child without its assistant, origin or mTLS
// binding, or with the plan's 10 million requests when it was given 1,000. So authority, creation and PATCH all
// compare whole authorities, with the one function below. (The tenant's first key holds the plan's maxima, so that it
// can delegate whatever the plan allows.)

export interface Authority {
  permissions: readonly string[];
  allowedOrigins: readonly string[] | null;
  allowedAssistants: readonly string[] | null;
  transientAssistant: boolean;
  rateLimit: RateLimitSettings;
  maxConcurrentConnections: number | null;
  quota: QuotaSettings;
  enforceMtls: boolean;
  clientCertFingerprints: readonly string[] | null;
  /** ms since epoch; null for never. */
  expiresAt: number | null;
}

/** What `inner` may do that `outer` may not: permissions not held, and the restrictions it is looser in. */
export interface Excess {
  permissions: string[];
  /** Field paths, e.g. `allowedAssistants`, `rateLimit.requestsPerMinute`. */
  restrictions: string[];
}

type AuthorityFields =
  | 'permissions' | 'allowedOrigins' | 'allowedAssistants' | 'transientAssistant' | 'rateLimit' | 'maxConcurrentConnections' | 'enforceMtls' | 'clientCertFingerprints';

const fieldsOf = (k: Pick<StoredKey, AuthorityFields> & { quota?: QuotaSettings | null }) => ({
  permissions: k.permissions,
  allowedOrigins: k.allowedOrigins,
  allowedAssistants: k.allowedAssistants,
  transientAssistant: k.transientAssistant,
  rateLimit: k.rateLimit,
  maxConcurrentConnections: k.maxConcurrentConnections,
  quota: k.quota ?? NO_QUOTA,
  enforceMtls: k.enforceMtls,
  clientCertFingerprints: k.clientCertFingerprints,
});

export const authorityOfStored = (k: Pick<StoredKey, AuthorityFields | 'expiresAt'> & { quota?: QuotaSettings | null }): Authority => ({
  ...fieldsOf(k),
  expiresAt: k.expiresAt === null ? null : Date.parse(k.expiresAt),
});

export const authorityOfAuthKey = (k: AuthKey): Authority => ({ ...fieldsOf(k.policy), expiresAt: k.expiresAt });

/** null (no restriction) contains everything; a list contains its own members only. */
const within = (outer: readonly string[] | null, inner: readonly string[] | null): boolean =>
  outer === null || (inner !== null && inner.every((x) => outer.includes(x)));

/** At most `outer`; null is no limit. */
const atMost = (outer: number | null, inner: number | null): boolean => outer === null || (inner !== null && inner <= outer);

/** Every origin of `inner` is allowed by `outer`: listed there, or (a plain origin) matched by a wildcard there. */
const originsWithin = (outer: readonly string[] | null, inner: readonly string[] | null): boolean =>
  outer === null || (inner !== null && inner.every((o) => outer.includes(o) || (!o.includes('*') && originAllowed(outer, o))));

export function excessOf(outer: Authority, inner: Authority): Excess {
  const restrictions: string[] = [];
  if (!within(outer.allowedAssistants, inner.allowedAssistants)) restrictions.push('allowedAssistants');
  if (inner.transientAssistant && !outer.transientAssistant) restrictions.push('transientAssistant');
  if (!originsWithin(outer.allowedOrigins, inner.allowedOrigins)) restrictions.push('allowedOrigins');
  for (const f of LIMIT_FIELDS) if (!atMost(outer.rateLimit[f], inner.rateLimit[f])) restrictions.push(`rateLimit.${f}`);
  if (!atMost(outer.maxConcurrentConnections, inner.maxConcurrentConnections)) restrictions.push('maxConcurrentConnections');
  for (const f of QUOTA_FIELDS) if (!atMost(outer.quota[f], inner.quota[f])) restrictions.push(`quota.${f}`);
  if (outer.enforceMtls) {
    if (!inner.enforceMtls) restrictions.push('enforceMtls');
    else if (!within(outer.clientCertFingerprints, inner.clientCertFingerprints)) restrictions.push('clientCertFingerprints');
  }
  if (!atMost(outer.expiresAt, inner.expiresAt)) restrictions.push('expiresAt');
  return { permissions: notCovered(outer.permissions, inner.permissions), restrictions };
}

export const isEmpty = (e: Excess): boolean => e.permissions.length === 0 && e.restrictions.length === 0;
