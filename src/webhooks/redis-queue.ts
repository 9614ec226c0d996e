import type { RedisClient } from '../store/redis/redis-store.ts';
import type { OutboxMessage, WebhookEvent } from './events.ts';
import { deadKey, dueKey, endpointsKey, fannedKey, healthKey, jobsKey, leaseKey, logKey, onceKey, outboxKey, outboxSetKey, PLATFORM_OUTBOX } from './keys.ts';
import type { DeadLetter, DeliveryLogEntry, Endpoint, EndpointHealth, Fairness, Job, WebhookQueue } from './types.ts';

const GROUP = 'delivery';
/** Due jobs looked at per job wanted: beyond them, capped endpoints' jobs wait for the next scan. */
const SCAN_PER_JOB = 8;
/**
 * How long an event fanned out is remembered while its outbox entry is not acknowledged: longer than any
 * failover; an entry still pending after it (a shard down for a day) may be fanned out again (at least once).
 */
const FANNED_FOR_MS = 24 * 3_600_000;

// Each script names keys of the `{webhooks}` tag only (one Cluster slot).

/**
 * KEYS: due, jobs, fanned. ARGV: now, forgetBefore, eventId1, key1, json1, eventId2, key2, json2, …
 * An event is fanned out once: its id is kept in `fanned` until its outbox entry is acknowledged (ackOutbox), so
 * an entry fanned out whose acknowledgement failed (its tenant's shard failed over meanwhile), claimed again
 * later, adds no jobs a second time, even when the first ones were delivered and removed since. Ids older than
 * forgetBefore are dropped (the bound of the set).
 */
const addJobs = `
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
local fresh = {}
for i = 3, #ARGV, 3 do
  local ev = ARGV[i]
  if fresh[ev] == nil then
    fresh[ev] = not redis.call('ZSCORE', KEYS[3], ev)
    if fresh[ev] then redis.call('ZADD', KEYS[3], ARGV[1], ev) end
  end
  if fresh[ev] and redis.call('HSETNX', KEYS[2], ARGV[i + 1], ARGV[i + 2]) == 1 then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i + 1]) end
end
return 1`;

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

/** KEYS: due, jobs, log. ARGV: key, logJson, logMax. */
const finish = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
return 1`;

/** KEYS: due, jobs, log. ARGV: key, jobJson, dueAt, logJson, logMax. Nothing when the job was finished meanwhile. */
const retry = `
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`;

/** KEYS: due, jobs, dead, log. ARGV: key, jobJson, now, logJson, logMax. */
const bury = `
redis.call('LPUSH', KEYS[4], ARGV[4])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[5]) - 1)
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1`;

/** KEYS: dead, due, jobs. ARGV: key, now. → 1 | 0 (no such dead letter) */
const redeliver = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local job = redis.call('HGET', KEYS[3], ARGV[1])
if not job then return 0 end
local j = cjson.decode(job)
j.since = tonumber(ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(j))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
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

const SCRIPTS = { startFailing: [1, startFailing], disable: [1, disable], enqueueOnce: [2, enqueueOnce], addJobs: [3, addJobs], takeDue: [3, takeDue], finish: [3, finish], retry: [3, retry], bury: [4, bury], redeliver: [3, redeliver] } as const;
type Script = keyof typeof SCRIPTS;

/**
 * The fleet's delivery state in Redis. Events wait in each tenant's outbox stream (written with the mutation);
 * a consumer group `delivery` hands each entry to one replica, which fans it out into one job per endpoint and
 * acknowledges it; an entry whose consumer died unacknowledged is claimed by another (XAUTOCLAIM). Jobs wait in
 * a sorted set by due time; taking one leases it (its due time moves to the lease's end), so a replica killed
 * mid-delivery leaves it due again for another.
 */
export class RedisWebhookQueue implements WebhookQueue {
  readonly #r: RedisClient;
  readonly #p: string;
  readonly #outboxMax: number;
  /** Outboxes whose consumer group this process has made sure of. */
  readonly #groups = new Set<string>();

  constructor(client: RedisClient, prefix: string, outboxMax: number) {
    this.#r = client;
    this.#p = prefix;
    this.#outboxMax = outboxMax;
    for (const [name, [keys, lua]] of Object.entries(SCRIPTS)) this.#r.defineCommand(`kgwh_${name}`, { numberOfKeys: keys, lua });
  }

  #run<T>(name: Script, keys: string[], args: Array<string | number>): Promise<T> {
    const cmd = (this.#r as unknown as Record<string, (...a: Array<string | number>) => Promise<T>>)[`kgwh_${name}`]!;
    return cmd.call(this.#r, ...keys, ...args);
  }

  async putEndpoint(endpoint: Endpoint): Promise<void> {
    await this.#r.hset(endpointsKey(this.#p), endpoint.id, JSON.stringify(endpoint));
  }

  async getEndpoint(id: string): Promise<Endpoint | null> {
    const raw = await this.#r.hget(endpointsKey(this.#p), id);
    return raw ? (JSON.parse(raw) as Endpoint) : null;
  }

  async listEndpoints(): Promise<Endpoint[]> {
    const all = await this.#r.hvals(endpointsKey(this.#p));
    return all.map((raw) => JSON.parse(raw) as Endpoint).sort((a, b) => a.id.localeCompare(b.id));
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    await this.#r.hdel(healthKey(this.#p), id);
    return (await this.#r.hdel(endpointsKey(this.#p), id)) === 1;
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
    // Named first, like a mutation does (store/redis/redis-store.ts), so the entry is never in an unread outbox.
    await this.#r.sadd(outboxSetKey(this.#p), tenantId ?? PLATFORM_OUTBOX);
    await this.#r.xadd(outboxKey(this.#p, tenantId), 'MAXLEN', '~', this.#outboxMax, '*', 'e', JSON.stringify(event));
  }

  async enqueueOnce(tenantId: string, marker: string, ttlMs: number, event: WebhookEvent): Promise<boolean> {
    await this.#r.sadd(outboxSetKey(this.#p), tenantId);
    return (await this.#run<number>('enqueueOnce', [onceKey(this.#p, tenantId, marker), outboxKey(this.#p, tenantId)], [Math.max(1, Math.round(ttlMs)), JSON.stringify(event), this.#outboxMax])) === 1;
  }

  async lease(name: string, ms: number): Promise<boolean> {
    return (await this.#r.set(leaseKey(this.#p, name), '1', 'PX', Math.max(1, Math.round(ms)), 'NX')) === 'OK';
  }

  async #ensureGroup(stream: string): Promise<void> {
    if (this.#groups.has(stream)) return;
    try {
      await this.#r.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    this.#groups.add(stream);
  }

  async readOutbox(consumer: string, count: number, claimIdleMs: number): Promise<OutboxMessage[]> {
    const owners = await this.#r.smembers(outboxSetKey(this.#p));
    const per = await Promise.allSettled(owners.map(async (owner) => {
      const tenantId = owner === PLATFORM_OUTBOX ? null : owner;
      const stream = outboxKey(this.#p, tenantId);
      try {
        await this.#ensureGroup(stream);
        const claimed = (await this.#r.xautoclaim(stream, GROUP, consumer, claimIdleMs, '0-0', 'COUNT', count)) as [string, Array<[string, string[]] | null>];
        const fresh = (await this.#r.xreadgroup('GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]> | null;
        const rows = [...(claimed[1] ?? []).filter((r): r is [string, string[]] => r !== null), ...(fresh?.[0]?.[1] ?? [])];
        return rows.map(([ref, fields]) => ({ ref, tenantId, event: JSON.parse(fields[1]!) as WebhookEvent }));
      } catch (err) {
        // The stream was removed (and its group with it): made again on the next read.
        if (String((err as Error).message).includes('NOGROUP')) this.#groups.delete(stream);
        throw err;
      }
    }));
    // Each outbox is in its tenant's slot: one whose shard is failing over is read on a later poll (its entries
    // wait there), and the others are fanned out meanwhile. Only when none could be read is the poll failed.
    const read = per.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = per.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed && read.length === 0) throw failed.reason;
    return read.flat();
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

  async addJobs(jobs: Job[], now: number): Promise<void> {
    if (!jobs.length) return;
    await this.#run('addJobs', [dueKey(this.#p), jobsKey(this.#p), fannedKey(this.#p)], [now, now - FANNED_FOR_MS, ...jobs.flatMap((j) => [j.event.id, j.key, JSON.stringify(j)])]);
  }

  async takeDue(now: number, leaseUntil: number, count: number, fairness: Fairness): Promise<Job[]> {
    const busy = JSON.stringify(Object.fromEntries(fairness.busy));
    const postpone = JSON.stringify(Object.fromEntries(fairness.postponeMs));
    const args = [now, leaseUntil, count, fairness.perGroup, busy, postpone, count * SCAN_PER_JOB];
    const rows = await this.#run<string[]>('takeDue', [dueKey(this.#p), jobsKey(this.#p), endpointsKey(this.#p)], args);
    return rows.map((raw) => JSON.parse(raw) as Job);
  }

  async finish(job: Job, log: DeliveryLogEntry, logMax: number): Promise<void> {
    await this.#run('finish', [dueKey(this.#p), jobsKey(this.#p), logKey(this.#p, job.endpointId)], [job.key, JSON.stringify(log), logMax]);
  }

  async retry(job: Job, dueAt: number, log: DeliveryLogEntry, logMax: number): Promise<void> {
    await this.#run('retry', [dueKey(this.#p), jobsKey(this.#p), logKey(this.#p, job.endpointId)], [job.key, JSON.stringify(job), dueAt, JSON.stringify(log), logMax]);
  }

  async bury(job: Job, log: DeliveryLogEntry, logMax: number, now: number): Promise<void> {
    await this.#run('bury', [dueKey(this.#p), jobsKey(this.#p), deadKey(this.#p), logKey(this.#p, job.endpointId)], [job.key, JSON.stringify(job), now, JSON.stringify(log), logMax]);
  }

  async deliveries(endpointId: string, limit: number): Promise<DeliveryLogEntry[]> {
    const rows = await this.#r.lrange(logKey(this.#p, endpointId), 0, limit - 1);
    return rows.map((raw) => JSON.parse(raw) as DeliveryLogEntry);
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const keys = await this.#r.zrevrange(deadKey(this.#p), 0, limit - 1);
    if (!keys.length) return [];
    const rows = await this.#r.hmget(jobsKey(this.#p), ...keys);
    return rows.filter((r): r is string => r !== null).map((raw) => {
      const j = JSON.parse(raw) as Job;
      return { key: j.key, endpointId: j.endpointId, event: j.event, attempts: j.attempts };
    });
  }

  async redeliver(key: string, now: number): Promise<boolean> {
    return (await this.#run<number>('redeliver', [deadKey(this.#p), dueKey(this.#p), jobsKey(this.#p)], [key, now])) === 1;
  }
}
