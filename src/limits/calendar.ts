import { LRUCache } from 'lru-cache';
import type { RedisClient } from '../store/redis/redis-store.ts';

// Calendar months (UTC) for monthly quotas (issue 17), and the counter of requests admitted per key and tenant
// and month. It has the shape of a rate-limiter-flexible limiter (consume / reward), so the rate-limit windows'
// leases (rate-limits.ts) work on it unchanged: a busy key costs one Redis call per lease, not per request.

export const monthOf = (ms: number): string => new Date(ms).toISOString().slice(0, 7);

/** The first millisecond of the next calendar month (UTC). */
export function monthEnd(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Counters outlive their month by a day, so a replica whose clock runs late still finds its month's count. */
export const COUNTER_SLACK_MS = 86_400_000;

/** What a window counts with: rate-limiter-flexible's limiters, and MonthCounter. */
export interface Counter {
  consume(id: string, points: number): Promise<{ consumedPoints: number; msBeforeNext: number }>;
  reward(id: string, points: number): Promise<unknown>;
}

// KEYS: counter. ARGV: n (may be negative), expireAtMs.
const addLua = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return n`;

type Scripted = RedisClient & { kgQuotaAdd(key: string, n: number, expireAt: number): Promise<number> };

/**
 * Requests counted per subject and calendar month. `id` is `<tenantId>:<keyId>` (a key's own quota) or
 * `<tenantId>:*` (the tenant's), and the Redis key `<prefix>{<tenantId>}:q:<YYYY-MM>:r:<keyId|*>`; the count
 * carries no limit, so a quota changed mid-month keeps what was used.
 *
 * Redis unreachable: the count goes on in this process from the last value it read from Redis (so each of N
 * replicas may admit what was left of the quota when the outage began: N-times exposure of the remainder,
 * reported through `onFallback`); what was admitted meanwhile is not added to Redis afterwards. Without Redis
 * (the embedded store) the local count is the count.
 */
export class MonthCounter implements Counter {
  readonly #redis: Scripted | null;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #onFallback: () => void;
  /** The last count seen per Redis key, and the count itself while Redis is unreachable or absent (bounded by
   *  count: lru-cache preallocates 2.7 MB for `max: 100_000`, so the bound is a size of one per entry). */
  readonly #local = new LRUCache<string, number>({ maxSize: 100_000, sizeCalculation: () => 1 });

  /** Counts held in process (keygate_state_entries{state="month_counts"}). */
  get size(): number {
    return this.#local.size;
  }

  constructor(opts: { redis: RedisClient | null; prefix: string; now?: () => number; onFallback?: () => void }) {
    if (opts.redis) opts.redis.defineCommand('kgQuotaAdd', { numberOfKeys: 1, lua: addLua });
    this.#redis = opts.redis as Scripted | null;
    this.#prefix = opts.prefix;
    this.#now = opts.now ?? Date.now;
    this.#onFallback = opts.onFallback ?? (() => {});
  }

  #key(id: string, month: string): string {
    const colon = id.indexOf(':');
    return `${this.#prefix}{${id.slice(0, colon)}}:q:${month}:r:${id.slice(colon + 1)}`;
  }

  async #add(id: string, n: number): Promise<{ consumedPoints: number; msBeforeNext: number }> {
    const now = this.#now();
    const end = monthEnd(now);
    const key = this.#key(id, monthOf(now));
    let count: number;
    if (this.#redis) {
      try {
        count = await this.#redis.kgQuotaAdd(key, n, end + COUNTER_SLACK_MS);
        this.#local.set(key, count);
        return { consumedPoints: count, msBeforeNext: end - now };
      } catch {
        this.#onFallback();
      }
    }
    count = (this.#local.get(key) ?? 0) + n;
    this.#local.set(key, count);
    return { consumedPoints: count, msBeforeNext: end - now };
  }

  consume(id: string, points: number): Promise<{ consumedPoints: number; msBeforeNext: number }> {
    return this.#add(id, points);
  }

  reward(id: string, points: number): Promise<unknown> {
    return this.#add(id, -points);
  }
}
