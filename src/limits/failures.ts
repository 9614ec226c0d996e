import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.ts';
import type { RedisClient } from '../store/redis/redis-store.ts';
import type { FailureBlock } from './types.ts';

/**
 * Failed-authentication blocking per client IP (SPEC §6). Failures are counted in Redis (shared by every
 * replica); once an IP is over the threshold, each replica that sees it remembers the block locally, so a
 * blocked client costs no store lookup and no Redis call at all.
 */
export class FailureBlockImpl implements FailureBlock {
  readonly #limiter: RateLimiterAbstract;
  readonly #blocked: LRUCache<string, number>;

  constructor(opts: { redis: RedisClient | null; prefix: string; cfg: Config['limits']['failedAttempts'] }) {
    const base = { points: opts.cfg.maxFailures, duration: opts.cfg.windowSeconds, blockDuration: opts.cfg.blockSeconds, keyPrefix: `${opts.prefix}fail` };
    this.#limiter = opts.redis
      ? new RateLimiterRedis({ ...base, storeClient: opts.redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(base) })
      : new RateLimiterMemory(base);
    this.#blocked = new LRUCache<string, number>({ max: 100_000, ttl: opts.cfg.blockSeconds * 1000, ttlAutopurge: false });
  }

  blockedFor(ip: string): number {
    const until = this.#blocked.get(ip);
    if (until === undefined) return 0;
    const left = until - Date.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  async fail(ip: string): Promise<number> {
    try {
      await this.#limiter.consume(ip);
      return 0;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      this.#blocked.set(ip, Date.now() + err.msBeforeNext, { ttl: Math.max(1, err.msBeforeNext) });
      return Math.ceil(err.msBeforeNext / 1000);
    }
  }
}
