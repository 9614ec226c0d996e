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

type Window = 'm' | 'd';
const DURATION: Record<Window, number> = { m: 60, d: 86_400 };

interface Check {
  scope: 'key' | 'tenant';
  limiter: RateLimiterAbstract;
  points: number;
  id: string;
}

type Result = { check: Check; res: RateLimiterRes; ok: boolean };

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

  #checks(identity: Identity): Check[] {
    const { key, tenant } = identity;
    const out: Check[] = [];
    const plan = this.#plans[tenant.plan];
    const add = (scope: Check['scope'], window: Window, points: number | null | undefined, id: string) => {
      if (points) out.push({ scope, limiter: this.#limiter(window, points), points, id });
    };
    add('key', 'm', key.rateLimit.requestsPerMinute, key.id);
    add('key', 'd', key.rateLimit.requestsPerDay, key.id);
    add('tenant', 'm', plan?.requestsPerMinute.max, tenant.id);
    add('tenant', 'd', plan?.requestsPerDay.max, tenant.id);
    return out;
  }

  consume(identity: Identity): Promise<RateVerdict | null> | null {
    const checks = this.#checks(identity);
    if (checks.length === 0) return null;
    return Promise.all(
      checks.map((check) =>
        check.limiter.consume(check.id).then(
          (res) => ({ check, res, ok: true }),
          (err: unknown) => {
            if (err instanceof RateLimiterRes) return { check, res: err, ok: false };
            throw err;
          },
        ),
      ),
    ).then(verdictOf);
  }
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** The refusal that lasts longest, or else the window with the fewest requests left (the tightest). */
function verdictOf(results: Result[]): RateVerdict {
  const refused = results.filter((r) => !r.ok);
  if (refused.length) {
    const worst = refused.reduce((a, b) => (b.res.msBeforeNext > a.res.msBeforeNext ? b : a));
    const wait = seconds(worst.res.msBeforeNext);
    return { ok: false, scope: worst.check.scope, retryAfterSeconds: wait, limit: worst.check.points, remaining: 0, resetSeconds: wait };
  }
  const tightest = results.reduce((a, b) => (b.res.remainingPoints < a.res.remainingPoints ? b : a));
  return { ok: true, limit: tightest.check.points, remaining: tightest.res.remainingPoints, resetSeconds: seconds(tightest.res.msBeforeNext) };
}
