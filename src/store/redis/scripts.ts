// Lua scripts: each touches keys of one Cluster slot only (one tenant's hash tag, or a single key), so they run
// on Redis Cluster too (docs/redis-keys.md). The audit entry (XADD, capped) and the invalidation message
// (PUBLISH) are written in the same script as the mutation, so a mutation is never without its audit line or
// its eviction; the webhook event (issue 17) goes to the tenant's outbox stream in the same script too, so a key
// mutation is never without its event.

/** KEYS: tenant, keyset, key, audit, outbox. ARGV: keyId, keyJson, auditJson, auditMax, eventJson ('' for none), outboxMax. → 1 | 0 (limit) | -1 (no tenant) */
export const createKey = `
local tenant = redis.call('GET', KEYS[1])
if not tenant then return -1 end
local maxKeys = tonumber(cjson.decode(tenant).maxKeys)
if redis.call('ZCARD', KEYS[2]) >= maxKeys then return 0 end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
if ARGV[5] ~= '' then redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'e', ARGV[5]) end
return 1`;

/** KEYS: record, audit, outbox. ARGV: expectedJson, newJson, auditJson, auditMax, channel, eventJson, webhookJson ('' for none), outboxMax. → 1 | 0 (changed meanwhile) */
export const compareAndSet = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[6])
if ARGV[7] ~= '' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[7]) end
return 1`;

/** KEYS: key, keyset, audit, outbox. ARGV: keyId, auditJson, auditMax, channel, eventJson, webhookJson ('' for none), outboxMax. → 1 | 0 (gone) */
export const removeKey = `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
if ARGV[6] ~= '' then redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[6]) end
return 1`;

/** KEYS: tenant, audit. ARGV: tenantJson, auditJson, auditMax. → 1 | 0 (exists) */
export const createTenant = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
return 1`;

/** KEYS: tenant, audit. ARGV: auditJson, auditMax. → 1 | 0 (no tenant: no stray stream is created) */
export const appendAudit = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
return 1`;

/**
 * KEYS: tenant, audit, refusals. ARGV: entryJson (ending in `"count":`), auditMax, group, window, nowIso, windowEndMs.
 * → 1 | 0 (no tenant). Repeated refusals of one group (actor, key, operation) in one window are one audit entry:
 * each repeat deletes the window's entry and appends it again with the count, so a flood of refusals holds one
 * place in the capped stream instead of evicting lifecycle records. `refusals` (a hash group → "window|entry id|
 * count|first at") lives until the window ends, so it holds at most the groups refused in one window.
 */
export const appendRefusal = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local count, firstAt = 1, ARGV[5]
local prev = redis.call('HGET', KEYS[3], ARGV[3])
if prev then
  local w, id, n, at = string.match(prev, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if w == ARGV[4] then
    count = tonumber(n) + 1
    firstAt = at
    redis.call('XDEL', KEYS[2], id)
  end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1] .. count .. ',"firstAt":"' .. firstAt .. '"}}')
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4] .. '|' .. id .. '|' .. count .. '|' .. firstAt)
redis.call('PEXPIREAT', KEYS[3], ARGV[6])
return 1`;

/**
 * KEYS: lastUsed hash, keyset. ARGV: keyId1, at1, keyId2, at2, … → fields written.
 * lastUsedAt of the tenant's keys: only a key still in the keyset is written, and when the hash holds more fields
 * than the tenant has keys (keys revoked since), the fields of keys no longer there are removed, so the hash is
 * bounded by the tenant's keys however many are minted and revoked.
 */
export const touchKeys = `
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
if redis.call('HLEN', KEYS[1]) > redis.call('ZCARD', KEYS[2]) then
  for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not redis.call('ZSCORE', KEYS[2], id) then redis.call('HDEL', KEYS[1], id) end
  end
end
return n`;

/**
 * KEYS: hash. ARGV: ttlSeconds, writerField, seq, field1, n1, field2, n2, … → 1 | 0 (counted before).
 * Usage counters: one call per hash and batch. `writerField` holds the last batch of that writer counted in
 * this hash, so a batch sent again (a retried flush) is counted once.
 */
export const incrementFields = `
local seq = tonumber(ARGV[3])
if tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0') >= seq then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;

export const scripts = { createKey, compareAndSet, removeKey, createTenant, appendAudit, appendRefusal, touchKeys, incrementFields } as const;
export type ScriptName = keyof typeof scripts;
export const scriptKeyCounts: Record<ScriptName, number> = { createKey: 5, compareAndSet: 3, removeKey: 4, createTenant: 2, appendAudit: 2, appendRefusal: 3, touchKeys: 2, incrementFields: 1 };
