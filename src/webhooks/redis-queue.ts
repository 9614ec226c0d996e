import type { RedisClient } from '../store/redis/connect.ts';
import type { OutboxMessage, WebhookEvent } from './events.ts';
import { closedKey, deadEndpointKey, deadGroupKey, deadKey, deliveryBase, dueKey, endpointsKey, fannedKey, healthKey, jobsKey, leaseKey, logKey, onceKey, outboxKey, outboxSetKey, PLATFORM_OUTBOX, readyKey, retiredKey, tenantEndpointsKey } from './keys.ts';
import { groupOfJob, type CreateEndpointResult, type DeadLetter, type DeliveryLogEntry, type DropReason, type Endpoint, type EndpointHealth, type Fairness, type Job, type WebhookCaps, type JobDrop, type WebhookQueue } from './types.ts';

const GROUP = 'delivery';
/** Due jobs looked at per job wanted: beyond them, capped endpoints' jobs wait for the next scan. */
const SCAN_PER_JOB = 8;
/**
 * How long an event fanned out is remembered while its outbox entry is not acknowledged: longer than any
 * failover; an entry still pending after it (a shard down for a day) may be fanned out again (at least once).
 */
const FANNED_FOR_MS = 24 * 3_600_000;
/**
 * What one poll reads, whatever the number of tenants: at most READY_PER_POLL outboxes signalled as written
 * (`{webhooks}:ready`), SWEEP_PER_POLL outboxes of the sweep through every outbox (`{webhooks}:outboxes`, a
 * slice per poll from a cursor this process keeps), and RETIRE_PER_POLL deleted tenants' outboxes checked for
 * removal. The sweep finds an event whose signal was lost, and claims the entries of a dead consumer: each
 * outbox is swept at least once every ceil(outboxes ÷ SWEEP_PER_POLL) polls of one replica.
 */
const READY_PER_POLL = 64;
const SWEEP_PER_POLL = 50;
const RETIRE_PER_POLL = 8;

// Each script names keys of one Cluster slot: the `{webhooks}` tag, or one tenant's (its outbox: readOutbox,
// retireOutbox; its marker and outbox: enqueueOnce).

// The caps (types.ts WebhookCaps): `pending` counts the jobs waiting per group (`g:<group>`) and per endpoint
// (`e:<endpoint>`); dead letters sit in `dead` (all, by time: what expires next) and in `dead:g:<group>` and
// `dead:e:<endpoint>` (what a cap evicts, and a tenant's list). The scripts name the per-group and per-endpoint
// keys from ARGV's base (`<prefix>{webhooks}:`): the same slot as every key they declare.
const HELPERS = `
local function unpend(base, g, e)
  for _, f in ipairs({'g:' .. g, 'e:' .. e}) do
    if redis.call('HINCRBY', base .. 'pending', f, -1) <= 0 then redis.call('HDEL', base .. 'pending', f) end
  end
end
local function pending(base, f)
  return tonumber(redis.call('HGET', base .. 'pending', f) or '0')
end
local function groupOf(raw, key)
  local ok, j = pcall(cjson.decode, raw or '{}')
  local g = ok and j.group
  if g and g ~= cjson.null then return g end
  return string.match(key, ':([^:]*)$') or ''
end
-- Removes a dead letter everywhere (its job, its three index entries).
local function undead(base, key, g)
  redis.call('HDEL', base .. 'jobs', key)
  redis.call('ZREM', base .. 'dead', key)
  redis.call('ZREM', base .. 'dead:g:' .. g, key)
  redis.call('ZREM', base .. 'dead:e:' .. (string.match(key, ':([^:]*)$') or ''), key)
end
`;

/**
 * KEYS: due, jobs, fanned. ARGV: now, forgetBefore, base, maxPerGroup, maxPerEndpoint, then per job: eventId, key,
 * json, group, endpoint. → {group, reason} per job dropped at a pending cap.
 * An event is fanned out once: its id is kept in `fanned` until its outbox entry is acknowledged (ackOutbox), so
 * an entry fanned out whose acknowledgement failed (its tenant's shard failed over meanwhile), claimed again
 * later, adds no jobs a second time, even when the first ones were delivered and removed since. Ids older than
 * forgetBefore are dropped (the bound of the set).
 */
const addJobs = `${HELPERS}
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
local base = ARGV[3]
local dropped = {}
local fresh = {}
for i = 6, #ARGV, 5 do
  local ev, key, g, e = ARGV[i], ARGV[i + 1], ARGV[i + 3], ARGV[i + 4]
  if fresh[ev] == nil then
    fresh[ev] = not redis.call('ZSCORE', KEYS[3], ev)
    if fresh[ev] then redis.call('ZADD', KEYS[3], ARGV[1], ev) end
  end
  if fresh[ev] and redis.call('HEXISTS', KEYS[2], key) == 0 then
    if pending(base, 'e:' .. e) >= tonumber(ARGV[5]) then
      dropped[#dropped + 1] = {g, 'pending_endpoint_cap'}
    elseif pending(base, 'g:' .. g) >= tonumber(ARGV[4]) then
      dropped[#dropped + 1] = {g, 'pending_tenant_cap'}
    else
      redis.call('HSET', KEYS[2], key, ARGV[i + 2])
      redis.call('ZADD', KEYS[1], ARGV[1], key)
      redis.call('HINCRBY', base .. 'pending', 'g:' .. g, 1)
      redis.call('HINCRBY', base .. 'pending', 'e:' .. e, 1)
    end
  end
end
return dropped`;

/**
 * KEYS: due, jobs, endpoints. ARGV: now, leaseUntil, count, perGroup, busyJson ({group: attempts running}),
 * postponeJson ({group: ms}), scanMax. → job JSONs, each now leased (due again at leaseUntil). A job's group is
 * its endpoint's tenant, or the endpoint itself (a platform endpoint, or one deleted), read from `endpoints`.
 * Of the due jobs, oldest first, a group's are taken while it has fewer than perGroup attempts running; the rest
 * of its due jobs are put back by its postpone time, so the next scan reaches other groups' jobs first (types.ts
 * Fairness).
 */
const takeDue = `
local busy = cjson.decode(ARGV[5])
local postpone = cjson.decode(ARGV[6])
local groups = {}
local now = tonumber(ARGV[1])
local per = tonumber(ARGV[4])
local want = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[7]))
local out = {}
for _, id in ipairs(ids) do
  if #out >= want then break end
  local ep = string.match(id, ':([^:]*)$') or ''
  local g = groups[ep]
  if not g then
    local raw = redis.call('HGET', KEYS[3], ep)
    local t = raw and cjson.decode(raw).tenantId
    g = (t and t ~= cjson.null) and t or ep
    groups[ep] = g
  end
  local running = busy[g] or 0
  if running >= per then
    redis.call('ZADD', KEYS[1], now + (postpone[g] or 50), id)
  else
    local job = redis.call('HGET', KEYS[2], id)
    if job then
      busy[g] = running + 1
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      out[#out + 1] = job
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return out`;

/**
 * KEYS: due, jobs, log, dead. ARGV: key, logJson, logMax (0: no log entry, for an endpoint deleted), base, group,
 * endpoint. Delivered (or its endpoint gone): the job leaves, whether it was pending or (another replica's attempt
 * having buried it meanwhile) dead.
 */
const finish = `${HELPERS}
if tonumber(ARGV[3]) > 0 then
  redis.call('LPUSH', KEYS[3], ARGV[2])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  undead(ARGV[4], ARGV[1], groupOf(redis.call('HGET', KEYS[2], ARGV[1]), ARGV[1]))
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
unpend(ARGV[4], ARGV[5], ARGV[6])
return 1`;

/**
 * KEYS: due, jobs, log, dead. ARGV: key, jobJson, dueAt, logJson, logMax. Nothing when the job was finished or
 * dead-lettered meanwhile.
 */
const retry = `
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 or redis.call('ZSCORE', KEYS[4], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`;

/**
 * KEYS: due, jobs, dead, log, deadOfGroup, deadOfEndpoint. ARGV: key, jobJson, now, logJson, logMax, base, group,
 * endpoint, maxDeadPerGroup, maxDeadPerEndpoint. Over a dead-letter cap, the oldest dead letters of that endpoint
 * (then group) are removed. → {group, reason} per dead letter removed.
 */
const bury = `${HELPERS}
redis.call('LPUSH', KEYS[4], ARGV[4])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[5]) - 1)
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 or redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {} end
local base, g = ARGV[6], ARGV[7]
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
unpend(base, g, ARGV[8])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[1])
local dropped = {}
while redis.call('ZCARD', KEYS[6]) > tonumber(ARGV[10]) do
  undead(base, redis.call('ZRANGE', KEYS[6], 0, 0)[1], g)
  dropped[#dropped + 1] = {g, 'dead_endpoint_cap'}
end
while redis.call('ZCARD', KEYS[5]) > tonumber(ARGV[9]) do
  undead(base, redis.call('ZRANGE', KEYS[5], 0, 0)[1], g)
  dropped[#dropped + 1] = {g, 'dead_tenant_cap'}
end
return dropped`;

/**
 * KEYS: dead, due, jobs. ARGV: key, now, base, maxPerGroup, maxPerEndpoint. → 1 | 0 (no such dead letter) | -1
 * (its group or endpoint has its cap of pending jobs)
 */
const redeliver = `${HELPERS}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local job = redis.call('HGET', KEYS[3], ARGV[1])
if not job then return 0 end
local base = ARGV[3]
local g = groupOf(job, ARGV[1])
local e = string.match(ARGV[1], ':([^:]*)$') or ''
if pending(base, 'g:' .. g) >= tonumber(ARGV[4]) or pending(base, 'e:' .. e) >= tonumber(ARGV[5]) then return -1 end
undead(base, ARGV[1], g)
local j = cjson.decode(job)
j.since = tonumber(ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(j))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HINCRBY', base .. 'pending', 'g:' .. g, 1)
redis.call('HINCRBY', base .. 'pending', 'e:' .. e, 1)
return 1`;

/** KEYS: deadOfGroup, jobs. ARGV: limit. → {jobJson, deadAt, …}, newest first, read in one step (evictions run meanwhile). */
const deadLetters = `
local rows = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local job = redis.call('HGET', KEYS[2], rows[i])
  if job then
    out[#out + 1] = job
    out[#out + 1] = rows[i + 1]
  end
end
return out`;

/** KEYS: dead, jobs. ARGV: before, limit, base. → dead letters removed */
const expireDead = `${HELPERS}
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, key in ipairs(old) do undead(ARGV[3], key, groupOf(redis.call('HGET', KEYS[2], key), key)) end
return #old`;

/** KEYS: endpoints. ARGV: id, json. Only an endpoint that still exists (a deleted one is not made again). */
const replaceEndpoint = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/**
 * KEYS: endpoints, closed, tenantEndpoints. ARGV: id, json, maxPerTenant. → 1 (created) | 0 (at the cap) | -1
 * (the tenant is being deleted)
 */
const createEndpoint = `
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/**
 * KEYS: endpoints, health, deadOfEndpoint, jobs, log. ARGV: id, base. → 1 | 0. Its dead letters and delivery log
 * go with it (its pending jobs end at their next attempt, logged nowhere).
 */
const deleteEndpoint = `${HELPERS}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local t = cjson.decode(raw).tenantId
if t and t ~= cjson.null then redis.call('SREM', ARGV[2] .. 'endpoints:' .. t, ARGV[1]) end
for _, key in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do undead(ARGV[2], key, groupOf(redis.call('HGET', KEYS[4], key), key)) end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[5])
return 1`;

/** KEYS: marker, outbox. ARGV: ttlMs, eventJson, outboxMax. → 1 (written) | 0 (sent before) */
const enqueueOnce = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
return 1`;

/** KEYS: health. ARGV: id, healthJson. → the record that holds (the existing one, or this) */
const startFailing = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]`;

/** KEYS: health. ARGV: id, healthJson. → 1 (disabled now) | 0 (healthy again meanwhile, or disabled already) */
const disable = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local h = cjson.decode(cur)
if h.disabledAt and h.disabledAt ~= cjson.null then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/**
 * KEYS: outbox. ARGV: group, consumer, count, claimIdleMs. → {claimed entries, new entries, 1 when more may wait}.
 * One round trip per outbox, in its tenant's slot. An outbox never written to has no stream, and none is made for
 * it (nor a consumer group); a stream's group is made on its first read, from its first entry, so nothing
 * written before is skipped. Entries held by another consumer for claimIdleMs (it died) are claimed first.
 */
const readOutbox = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {{}, {}, 0} end
local claim = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], '0-0', 'COUNT', ARGV[3])
if type(claim) == 'table' and claim.err then
  if not string.find(claim.err, 'NOGROUP') then return redis.error_reply(claim.err) end
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')
  claim = {'0-0', {}}
end
local fresh = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
local rows = fresh and fresh[1][2] or {}
local n = tonumber(ARGV[3])
return {claim[2], rows, (#rows >= n or #claim[2] >= n) and 1 or 0}`;

/** KEYS: outbox. → 1 (nothing left in it: removed) | 0 (entries still wait, or are being fanned out) */
const retireOutbox = `
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

const SCRIPTS = {
  readOutbox: [1, readOutbox],
  retireOutbox: [1, retireOutbox],
  startFailing: [1, startFailing],
  disable: [1, disable],
  enqueueOnce: [2, enqueueOnce],
  addJobs: [3, addJobs],
  takeDue: [3, takeDue],
  finish: [4, finish],
  retry: [4, retry],
  bury: [6, bury],
  redeliver: [3, redeliver],
  expireDead: [2, expireDead],
  deadLetters: [2, deadLetters],
  createEndpoint: [3, createEndpoint],
  replaceEndpoint: [1, replaceEndpoint],
  deleteEndpoint: [5, deleteEndpoint],
} as const;

const dropsOf = (rows: Array<[string, DropReason]>): JobDrop[] => {
  const by = new Map<string, JobDrop>();
  for (const [group, reason] of rows) {
    const k = `${group} ${reason}`;
    const d = by.get(k) ?? by.set(k, { group, reason, count: 0 }).get(k)!;
    d.count++;
  }
  return [...by.values()];
};
type Script = keyof typeof SCRIPTS;

/**
 * The fleet's delivery state in Redis. Events wait in each tenant's outbox stream (written with the mutation);
 * a consumer group `delivery` hands each entry to one replica, which fans it out into one job per endpoint and
 * acknowledges it; an entry whose consumer died unacknowledged is claimed by another (XAUTOCLAIM) when the
 * sweep reaches its outbox (readOutbox: the outboxes signalled ready, and a slice of all of them, per poll). Jobs wait in
 * a sorted set by due time; taking one leases it (its due time moves to the lease's end), so a replica killed
 * mid-delivery leaves it due again for another.
 */
export class RedisWebhookQueue implements WebhookQueue {
  readonly #r: RedisClient;
  readonly #p: string;
  readonly #outboxMax: number;
  readonly #caps: WebhookCaps;
  get caps(): WebhookCaps {
    return this.#caps;
  }
  /** The sweep's place in `{webhooks}:outboxes` (SSCAN cursor), and members of its last page not swept yet. */
  #sweepCursor = '0';
  #sweepNext: string[] = [];

  constructor(client: RedisClient, prefix: string, outboxMax: number, caps: WebhookCaps) {
    this.#r = client;
    this.#p = prefix;
    this.#outboxMax = outboxMax;
    this.#caps = caps;
    for (const [name, [keys, lua]] of Object.entries(SCRIPTS)) this.#r.defineCommand(`kgwh_${name}`, { numberOfKeys: keys, lua });
  }

  #run<T>(name: Script, keys: string[], args: Array<string | number>): Promise<T> {
    const cmd = (this.#r as unknown as Record<string, (...a: Array<string | number>) => Promise<T>>)[`kgwh_${name}`]!;
    return cmd.call(this.#r, ...keys, ...args);
  }

  async putEndpoint(endpoint: Endpoint): Promise<void> {
    await this.#run('replaceEndpoint', [endpointsKey(this.#p)], [endpoint.id, JSON.stringify(endpoint)]);
  }

  async getEndpoint(id: string): Promise<Endpoint | null> {
    const raw = await this.#r.hget(endpointsKey(this.#p), id);
    return raw ? (JSON.parse(raw) as Endpoint) : null;
  }

  async createEndpoint(endpoint: Endpoint): Promise<CreateEndpointResult> {
    const maxPerTenant = this.#caps.maxEndpointsPerTenant;
    const t = endpoint.tenantId;
    if (t === null) {
      await this.#r.hset(endpointsKey(this.#p), endpoint.id, JSON.stringify(endpoint));
      return 'created';
    }
    const res = await this.#run<number>('createEndpoint', [endpointsKey(this.#p), closedKey(this.#p, t), tenantEndpointsKey(this.#p, t)], [endpoint.id, JSON.stringify(endpoint), maxPerTenant]);
    return res === 1 ? 'created' : res === 0 ? 'limit' : 'closed';
  }

  async closeTenant(tenantId: string, ms: number): Promise<void> {
    await this.#r.set(closedKey(this.#p, tenantId), '1', 'PX', Math.max(1, Math.round(ms)));
  }

  async listEndpoints(): Promise<Endpoint[]> {
    const all = await this.#r.hvals(endpointsKey(this.#p));
    return all.map((raw) => JSON.parse(raw) as Endpoint).sort((a, b) => a.id.localeCompare(b.id));
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    return (await this.#run<number>('deleteEndpoint', [endpointsKey(this.#p), healthKey(this.#p), deadEndpointKey(this.#p, id), jobsKey(this.#p), logKey(this.#p, id)], [id, deliveryBase(this.#p)])) === 1;
  }

  async health(): Promise<Map<string, EndpointHealth>> {
    const all = await this.#r.hgetall(healthKey(this.#p));
    return new Map(Object.entries(all).map(([id, raw]) => [id, JSON.parse(raw) as EndpointHealth]));
  }

  async setHealth(id: string, health: EndpointHealth | null): Promise<void> {
    if (health === null) await this.#r.hdel(healthKey(this.#p), id);
    else await this.#r.hset(healthKey(this.#p), id, JSON.stringify(health));
  }

  async startFailing(id: string, since: number): Promise<EndpointHealth> {
    const raw = await this.#run<string>('startFailing', [healthKey(this.#p)], [id, JSON.stringify({ failingSince: since, disabledAt: null })]);
    return JSON.parse(raw) as EndpointHealth;
  }

  async disable(id: string, health: EndpointHealth): Promise<boolean> {
    return (await this.#run<number>('disable', [healthKey(this.#p)], [id, JSON.stringify(health)])) === 1;
  }

  async enqueue(tenantId: string | null, event: WebhookEvent): Promise<void> {
    // Named first, like a tenant is when created, so the entry is never in an outbox the sweep does not reach.
    const owner = tenantId ?? PLATFORM_OUTBOX;
    await this.#r.sadd(outboxSetKey(this.#p), owner);
    await this.#r.xadd(outboxKey(this.#p, tenantId), 'MAXLEN', '~', this.#outboxMax, '*', 'e', JSON.stringify(event));
    await this.#signal(owner);
  }

  async enqueueOnce(tenantId: string, marker: string, ttlMs: number, event: WebhookEvent): Promise<boolean> {
    await this.#r.sadd(outboxSetKey(this.#p), tenantId);
    const written = (await this.#run<number>('enqueueOnce', [onceKey(this.#p, tenantId, marker), outboxKey(this.#p, tenantId)], [Math.max(1, Math.round(ttlMs)), JSON.stringify(event), this.#outboxMax])) === 1;
    if (written) await this.#signal(tenantId);
    return written;
  }

  /** The outbox has an entry: read on the next poll. Written already, so a lost signal only waits for the sweep. */
  async #signal(owner: string): Promise<void> {
    await this.#r.sadd(readyKey(this.#p), owner).catch(() => {});
  }

  async retireOutbox(tenantId: string): Promise<void> {
    await this.#r.sadd(retiredKey(this.#p), tenantId);
  }

  async lease(name: string, ms: number): Promise<boolean> {
    return (await this.#r.set(leaseKey(this.#p, name), '1', 'PX', Math.max(1, Math.round(ms)), 'NX')) === 'OK';
  }

  /**
   * The next slice of the sweep: SWEEP_PER_POLL outboxes. An SSCAN page (about COUNT members: Redis visits up to
   * ten times as many buckets to fill it) is read only when fewer are left over from the last one.
   */
  async #sweepSlice(): Promise<string[]> {
    if (this.#sweepNext.length < SWEEP_PER_POLL) {
      const [cursor, members] = await this.#r.sscan(outboxSetKey(this.#p), this.#sweepCursor, 'COUNT', SWEEP_PER_POLL);
      this.#sweepCursor = cursor;
      this.#sweepNext.push(...members.filter((m) => !this.#sweepNext.includes(m)));
    }
    return this.#sweepNext.splice(0, SWEEP_PER_POLL);
  }

  async #readOne(owner: string, consumer: string, count: number, claimIdleMs: number): Promise<{ rows: OutboxMessage[]; more: boolean }> {
    const tenantId = owner === PLATFORM_OUTBOX ? null : owner;
    type Row = [string, string[]] | null;
    const [claimed, fresh, more] = await this.#run<[Row[], Row[], number]>('readOutbox', [outboxKey(this.#p, tenantId)], [GROUP, consumer, count, claimIdleMs]);
    const rows = [...claimed, ...fresh].filter((r): r is [string, string[]] => r !== null);
    return { rows: rows.map(([ref, fields]) => ({ ref, tenantId, event: JSON.parse(fields[1]!) as WebhookEvent })), more: more === 1 };
  }

  async readOutbox(consumer: string, count: number, claimIdleMs: number): Promise<OutboxMessage[]> {
    const ready = (await this.#r.spop(readyKey(this.#p), READY_PER_POLL)) as string[];
    const owners = [...new Set([...ready, ...(await this.#sweepSlice())])];
    const per = await Promise.allSettled(owners.map((owner) => this.#readOne(owner, consumer, count, claimIdleMs)));
    // Each outbox is in its tenant's slot: one whose shard is failing over is read on a later poll (its entries
    // wait there), and the others are fanned out meanwhile. An outbox that held more than one read, or could not
    // be read, stays signalled; only when none could be read is the poll failed.
    const again = owners.filter((_, i) => {
      const r = per[i]!;
      return r.status === 'rejected' ? ready.includes(owners[i]!) : r.value.more;
    });
    if (again.length) await this.#r.sadd(readyKey(this.#p), ...again).catch(() => {});
    await this.#retire();
    const read = per.flatMap((r) => (r.status === 'fulfilled' ? [r.value.rows] : []));
    const failed = per.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed && read.length === 0) throw failed.reason;
    return read.flat();
  }

  /**
   * Deleted tenants (retireOutbox) whose outbox is empty leave the set of outboxes: their last events (the
   * revocations of their keys) were fanned out first. Nothing of the store writes to a deleted tenant's outbox
   * again; an event written after all the same (enqueue) names it again.
   */
  async #retire(): Promise<void> {
    const tenants = (await this.#r.srandmember(retiredKey(this.#p), RETIRE_PER_POLL)) as string[];
    if (!tenants.length) return;
    const done = await Promise.allSettled(tenants.map((t) => this.#run<number>('retireOutbox', [outboxKey(this.#p, t)], [])));
    const gone = tenants.filter((_, i) => {
      const r = done[i]!;
      return r.status === 'fulfilled' && r.value === 1;
    });
    if (gone.length) await this.#r.multi().srem(outboxSetKey(this.#p), ...gone).srem(retiredKey(this.#p), ...gone).exec();
  }

  /** Acknowledged and removed: a fanned-out entry lives on as its jobs, so the outbox holds only what is pending. */
  async ackOutbox(messages: OutboxMessage[]): Promise<void> {
    // Every acknowledgement is tried, whichever slots fail; an entry left unacknowledged is claimed and fanned out
    // again later, and its event's mark in `fanned` (addJobs) keeps that from adding its jobs twice.
    const done: string[] = [];
    const acks = await Promise.allSettled(messages.map(async (m) => {
      const stream = outboxKey(this.#p, m.tenantId);
      await this.#r.xack(stream, GROUP, m.ref);
      await this.#r.xdel(stream, m.ref);
      done.push(m.event.id);
    }));
    if (done.length) await this.#r.zrem(fannedKey(this.#p), ...done);
    const failed = acks.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async addJobs(jobs: Job[], now: number): Promise<JobDrop[]> {
    if (!jobs.length) return [];
    const c = this.#caps;
    const args = [now, now - FANNED_FOR_MS, deliveryBase(this.#p), c.maxPendingJobsPerTenant, c.maxPendingJobsPerEndpoint, ...jobs.flatMap((j) => [j.event.id, j.key, JSON.stringify(j), groupOfJob(j), j.endpointId])];
    return dropsOf(await this.#run('addJobs', [dueKey(this.#p), jobsKey(this.#p), fannedKey(this.#p)], args));
  }

  async takeDue(now: number, leaseUntil: number, count: number, fairness: Fairness): Promise<Job[]> {
    const busy = JSON.stringify(Object.fromEntries(fairness.busy));
    const postpone = JSON.stringify(Object.fromEntries(fairness.postponeMs));
    const args = [now, leaseUntil, count, fairness.perGroup, busy, postpone, count * SCAN_PER_JOB];
    const rows = await this.#run<string[]>('takeDue', [dueKey(this.#p), jobsKey(this.#p), endpointsKey(this.#p)], args);
    return rows.map((raw) => JSON.parse(raw) as Job);
  }

  async finish(job: Job, log: DeliveryLogEntry, logMax: number): Promise<void> {
    const keys = [dueKey(this.#p), jobsKey(this.#p), logKey(this.#p, job.endpointId), deadKey(this.#p)];
    await this.#run('finish', keys, [job.key, JSON.stringify(log), logMax, deliveryBase(this.#p), groupOfJob(job), job.endpointId]);
  }

  async retry(job: Job, dueAt: number, log: DeliveryLogEntry, logMax: number): Promise<void> {
    await this.#run('retry', [dueKey(this.#p), jobsKey(this.#p), logKey(this.#p, job.endpointId), deadKey(this.#p)], [job.key, JSON.stringify(job), dueAt, JSON.stringify(log), logMax]);
  }

  async bury(job: Job, log: DeliveryLogEntry, logMax: number, now: number): Promise<JobDrop[]> {
    const g = groupOfJob(job);
    const keys = [dueKey(this.#p), jobsKey(this.#p), deadKey(this.#p), logKey(this.#p, job.endpointId), deadGroupKey(this.#p, g), deadEndpointKey(this.#p, job.endpointId)];
    const args = [job.key, JSON.stringify(job), now, JSON.stringify(log), logMax, deliveryBase(this.#p), g, job.endpointId, this.#caps.maxDeadLettersPerTenant, this.#caps.maxDeadLettersPerEndpoint];
    return dropsOf(await this.#run('bury', keys, args));
  }

  deadLetterCount(): Promise<number> {
    return this.#r.zcard(deadKey(this.#p));
  }

  async expireDead(now: number, limit: number): Promise<number> {
    return this.#run<number>('expireDead', [deadKey(this.#p), jobsKey(this.#p)], [now - this.#caps.deadLetterHours * 3_600_000, limit, deliveryBase(this.#p)]);
  }

  async deliveries(endpointId: string, limit: number): Promise<DeliveryLogEntry[]> {
    const rows = await this.#r.lrange(logKey(this.#p, endpointId), 0, limit - 1);
    return rows.map((raw) => JSON.parse(raw) as DeliveryLogEntry);
  }

  async deadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    const rows = await this.#run<string[]>('deadLetters', [deadGroupKey(this.#p, group), jobsKey(this.#p)], [limit]);
    const out: DeadLetter[] = [];
    for (let i = 0; i < rows.length; i += 2) {
      const j = JSON.parse(rows[i]!) as Job;
      out.push({ key: j.key, deadAt: new Date(Number(rows[i + 1])).toISOString(), endpointId: j.endpointId, event: j.event, attempts: j.attempts });
    }
    return out;
  }

  async redeliver(key: string, now: number): Promise<'redelivered' | 'missing' | 'full'> {
    const c = this.#caps;
    const res = await this.#run<number>('redeliver', [deadKey(this.#p), dueKey(this.#p), jobsKey(this.#p)], [key, now, deliveryBase(this.#p), c.maxPendingJobsPerTenant, c.maxPendingJobsPerEndpoint]);
    return res === 1 ? 'redelivered' : res === 0 ? 'missing' : 'full';
  }
}
