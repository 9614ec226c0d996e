// The names of every Redis key the store writes. Key layout (`p` = configured prefix; `{ten_…}` is a Cluster
// hash tag, so one tenant's records share a slot; docs/redis-keys.md has the whole table, with the keys the
// limiters write):
//   p vr:<hash>            → {"t":tenantId,"k":keyId}   verification record, one per live hash; each in its
//                            own slot, so named one per command (but for the cache refresh's MGET, which
//                            names many only off Cluster)
//   p {ten}:t              → Tenant JSON
//   p {ten}:keys           → ZSET of key ids (lex order = creation order, ids are ULIDs)
//   p {ten}:k:<keyId>      → StoredKey JSON
//   p {ten}:audit          → capped STREAM of audit entries
//   p {platform}:audit     → capped STREAM of the platform's audit entries (writes that belong to no tenant)
//   p {ten}:refusals       → HASH: this refusal window's collapsed refusals (appendRefusal), expires with the window
//   p tenants              → ZSET of tenant ids (single-key commands only)
//   p {ten}:u:<period>     → HASH "<keyId|*>:<field>" → count (usage per hour YYYY-MM-DDTHH, day YYYY-MM-DD and month YYYY-MM; fields:
//                            the request outcomes, `sessions` opened and `sessionMs` of session time; and
//                            the tenant's refusals by error code, "*:r:<code>"),
//                            plus "~w:<writer>" → the last batch of that writer counted
//   p u:<period>           → HASH "<field>" → count (fleet totals; single-key script), "~w:<writer>" likewise
//   p {ten}:q:<YYYY-MM>:r:<keyId|*> → requests admitted this calendar month (monthly quotas, limits/calendar.ts)
//   p {ten}:q:<YYYY-MM>:s:<keyId|*> → session ms reserved this calendar month (limits/session-quota.ts)
//   p {ten}:lu             → HASH keyId → lastUsedAt
//   p {ten}:outbox         → STREAM of webhook events (store/outbox.ts; its name comes from the outbox port)
//   p {ten}:exp            → ZSET keyId → when its next expiry event is due (store/expiry.ts, expiry-index.ts)
//   p expiry-index         → "1" once every key is in the expiry index (single-key commands only)
// Every multi-key command and script names keys of one tenant only; nothing else is multi-key on Cluster.

/** The expiry index of a tenant: in its slot, beside its key records (store/redis/expiry-index.ts). */
export const expiryIndexKey = (p: string, tenantId: string): string => `${p}{${tenantId}}:exp`;

/** The store's key names under prefix `p`. */
export function redisKeyspace(p: string) {
  return {
    verification: (hash: string) => `${p}vr:${hash}`,
    tenant: (tenantId: string) => `${p}{${tenantId}}:t`,
    keys: (tenantId: string) => `${p}{${tenantId}}:keys`,
    key: (tenantId: string, keyId: string) => `${p}{${tenantId}}:k:${keyId}`,
    audit: (tenantId: string) => `${p}{${tenantId}}:audit`,
    refusals: (tenantId: string) => `${p}{${tenantId}}:refusals`,
    tenants: () => `${p}tenants`,
    usage: (tenantId: string, period: string) => `${p}{${tenantId}}:u:${period}`,
    totals: (period: string) => `${p}u:${period}`,
    lastUsed: (tenantId: string) => `${p}{${tenantId}}:lu`,
    expiryIndex: (tenantId: string) => expiryIndexKey(p, tenantId),
  };
}

export type Keyspace = ReturnType<typeof redisKeyspace>;
