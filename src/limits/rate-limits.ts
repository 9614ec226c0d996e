import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Identity } from '../auth/verify.ts';
import type { Config } from '../config/schema.ts';
import type { RedisClient } from '../store/redis/redis-store.ts';
import type { RateLimits, RateVerdict } from './types.ts';

// SPEC §6: per-key requestsPerMinute / requestsPerDay, and per-tenant limits across all its keys (the plan's
// maxima), shared through Redis by rate-limiter-flexible so N replicas enforce one limit.
//
// Over-limit is not an error: a limiter's "no" arrives as a RateLimiterRes and is answered 429. Only a store
// failure (an Error) makes rate-limiter-flexible fall back to the insurance limiter — a per-process
// RateLimiterMemory with the same points, so during a Redis outage each of N replicas admits up to the
// limit on its own (N-times exposure, bounded and documented). Recovery needs no restart: the next call
// that reaches Redis uses it again.
//
// Leases: a replica may take up to 1% of a window's limit (at most 64 requests) from Redis in one call and
// spend it locally, so a busy key costs one Redis round trip per lease instead of one per request. Leased
// requests are counted in Redis when taken, so the fleet never admits more than the limit; what a replica
// leased and did not spend before the window ended is lost (at most 1% of the limit per replica).
// Limits under 200 lease one request at a time, i.e. exactly as rate-limiter-flexible alone.

type Window = 'm' | 'd';
const DURATION: Record<Window, number> = { m: 60, d: 86_400 };

interface Check {
  scope: 'key' | 'tenant';
  limiter: RateLimiterAbstract;
  points: number;
  id: string;
  /** Lease cache key: limiter name + subject. */
  lease: string;
}

type Result = { check: Check; ok: boolean; remaining: number; msBeforeNext: number };

interface Lease {
  tokens: number;
  /** Remaining in the window (fleet-wide) when the lease was taken, minus this lease. */
  remaining: number;
  windowEnds: number;
}

const MAX_LEASE = 64;
const leaseSize = (points: number): number => Math.max(1, Math.min(MAX_LEASE, Math.floor(points / 100)));

/** The per-process fallback; every use is reported, so an outage (and only an outage) shows in metrics. */
class InsuranceLimiter extends RateLimiterMemory {
  readonly #onUse: () => void;
  constructor(opts: ConstructorParameters<typeof RateLimiterMemory>[0], onUse: () => void) {
    super(opts);
    this.#onUse = onUse;
  }
  override consume(...args: Parameters<RateLimiterMemory['consume']>): ReturnType<RateLimiterMemory['consume']> {
    this.#onUse();
    return super.consume(...args);
  }
}

export class RateLimitsImpl implements RateLimits {
  readonly #redis: RedisClient | null;
  readonly #prefix: string;
  readonly #plans: Config['plans'];
  readonly #limiters = new Map<string, RateLimiterAbstract>();
  readonly #onFallback: () => void;
  readonly #leases = new LRUCache<string, Lease>({ max: 100_000 });
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #checksByKey = new WeakMap<object, Check[]>();

  constructor(opts: { redis: RedisClient | null; prefix: string; plans: Config['plans']; onFallback?: () => void }) {
    this.#redis = opts.redis;
    this.#prefix = opts.prefix;
    this.#plans = opts.plans;
    this.#onFallback = opts.onFallback ?? (() => {});
  }

  /** One limiter per window and size (rate-limiter-flexible fixes `points` per instance); few distinct sizes exist. */
  #limiter(window: Window, points: number): RateLimiterAbstract {
    const name = `${window}${points}`;
    let limiter = this.#limiters.get(name);
    if (limiter) return limiter;
    const base = { points, duration: DURATION[window], keyPrefix: `${this.#prefix}rl:${name}` };
    if (this.#redis) {
      const insurance = new InsuranceLimiter(base, this.#onFallback);
      limiter = new RateLimiterRedis({ ...base, storeClient: this.#redis, rejectIfRedisNotReady: true, insuranceLimiter: insurance });
    } else {
      limiter = new RateLimiterMemory(base);
    }
    this.#limiters.set(name, limiter);
    return limiter;
  }

  /**
   * The windows that apply to a key, built once per cached key record rather than per request: a key or tenant
   * mutation evicts the record, and the reloaded record (a new object) gets its checks rebuilt.
   */
  #checks(identity: Identity): Check[] {
    let checks = this.#checksByKey.get(identity.key);
    if (!checks) this.#checksByKey.set(identity.key, (checks = this.#buildChecks(identity)));
    return checks;
  }

  #buildChecks(identity: Identity): Check[] {
    const { key, tenant } = identity;
    const out: Check[] = [];
    const plan = this.#plans[tenant.plan];
    const add = (scope: Check['scope'], window: Window, points: number | null | undefined, id: string) => {
      if (points) out.push({ scope, limiter: this.#limiter(window, points), points, id, lease: `${window}${points}:${id}` });
    };
    add('key', 'm', key.rateLimit.requestsPerMinute, key.id);
    add('key', 'd', key.rateLimit.requestsPerDay, key.id);
    add('tenant', 'm', plan?.requestsPerMinute.max, tenant.id);
    add('tenant', 'd', plan?.requestsPerDay.max, tenant.id);
    return out;
  }

  /** A request from a live lease, without any Redis call; null when the lease is spent or expired. */
  #fromLease(check: Check, now: number): Result | null {
    const lease = this.#leases.get(check.lease);
    if (!lease || lease.tokens === 0 || lease.windowEnds <= now) return null;
    lease.tokens--;
    return { check, ok: true, remaining: lease.remaining + lease.tokens, msBeforeNext: lease.windowEnds - now };
  }

  /** One lease request per window and subject at a time; concurrent requests wait for it and share it. */
  async #take(check: Check, now: number): Promise<Result> {
    // Single-request leases have nothing to share: no waiting in line.
    if (leaseSize(check.points) === 1) return this.#takeLease(check, now);
    for (;;) {
      const pending = this.#inflight.get(check.lease);
      if (!pending) break;
      await pending;
      const leased = this.#fromLease(check, Date.now());
      if (leased) return leased;
    }
    const taking = this.#takeLease(check, now);
    this.#inflight.set(check.lease, taking.then(() => undefined, () => undefined));
    try {
      return await taking;
    } finally {
      this.#inflight.delete(check.lease);
    }
  }

  async #takeLease(check: Check, now: number): Promise<Result> {
    let size = leaseSize(check.points);
    for (;;) {
      try {
        const res = await check.limiter.consume(check.id, size);
        this.#leases.set(check.lease, { tokens: size - 1, remaining: res.remainingPoints, windowEnds: now + res.msBeforeNext });
        return { check, ok: true, remaining: res.remainingPoints + size - 1, msBeforeNext: res.msBeforeNext };
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        // Fewer than a lease left in the window: give the lease back and ask for this one request.
        if (size > 1 && err.consumedPoints - size < check.points) {
          await check.limiter.reward(check.id, size);
          size = 1;
          continue;
        }
        return { check, ok: false, remaining: 0, msBeforeNext: err.msBeforeNext };
      }
    }
  }

  consume(identity: Identity): RateVerdict | Promise<RateVerdict> | null {
    const checks = this.#checks(identity);
    if (checks.length === 0) return null;
    const now = Date.now();
    const results: Array<Result | Promise<Result>> = [];
    let pending = false;
    for (const check of checks) {
      const leased = this.#fromLease(check, now);
      if (leased) results.push(leased);
      else {
        pending = true;
        results.push(this.#take(check, now));
      }
    }
    return pending ? Promise.all(results).then(verdictOf) : verdictOf(results as Result[]);
  }
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** The refusal that lasts longest, or else the window with the fewest requests left (the tightest). */
function verdictOf(results: Result[]): RateVerdict {
  let worst: Result | null = null;
  let tightest = results[0]!;
  for (const r of results) {
    if (!r.ok && (!worst || r.msBeforeNext > worst.msBeforeNext)) worst = r;
    if (r.remaining < tightest.remaining) tightest = r;
  }
  if (worst) {
    const wait = seconds(worst.msBeforeNext);
    return { ok: false, scope: worst.check.scope, retryAfterSeconds: wait, limit: worst.check.points, remaining: 0, resetSeconds: wait };
  }
  return { ok: true, limit: tightest.check.points, remaining: tightest.remaining, resetSeconds: seconds(tightest.msBeforeNext) };
}
