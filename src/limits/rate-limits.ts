import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Identity } from '../auth/verify.ts';
import type { AuthKey } from '../keys/types.ts';
import type { Config } from '../config/schema.ts';
import type { RedisClient } from '../store/redis/redis-store.ts';
import { monthOf, type Counter } from './calendar.ts';
import { crossed, type QuotaThreshold } from './quota-events.ts';
import type { RateLimits, RateVerdict } from './types.ts';

// SPEC §6: per-key requestsPerMinute / requestsPerDay, and per-tenant limits across all its keys (the plan's
// maxima), shared through Redis by rate-limiter-flexible so N replicas enforce one limit.
//
// Over-limit is not an error: a count past the window's limit is a verdict, answered 429. Only a store
// failure (an Error) makes rate-limiter-flexible fall back to the insurance limiter — a per-process
// RateLimiterMemory counting the same windows, so during a Redis outage each of N replicas admits up to the
// limit on its own (N-times exposure, bounded and documented). Recovery needs no restart: the next call
// that reaches Redis uses it again.
//
// Leases: a replica takes a lease of 1% of a window's limit (at most 1,000 requests) from Redis in one call and
// spends it locally, so a busy key costs one Redis round trip per lease instead of one per request. Leased
// requests are counted in Redis when taken, so the fleet never admits more than the limit. Once half of the
// first lease's size is left, the next one is taken in the background, so a steady stream of requests never
// waits for Redis (a wait there was the whole p99 at saturation: bench/README.md). A renewal of a rate-limit
// lease (not a quota's) while the window is less than half full is sized to about a second of the window's
// fleet-wide rate so far, between that first size and 1% of the limit: a key far busier than 1,000 requests a
// second costs about one call a second per window, not one per 1,000 requests (issue 18). What a replica
// leased and did not spend before the window ended is lost: at most one and a half leases (1.5% of the limit)
// per replica and window; and since leases grow only in the window's first half, a window that fills is
// filled by leases of the first size, as before. Limits under 200 lease one request at a time, i.e. exactly
// as rate-limiter-flexible alone.
//
// Bounded state (issue 13): rate-limiter-flexible fixes `points` per limiter instance, so one limiter per
// distinct limit value would grow with every value a key was ever PATCHed to, and never shrink. Instead there
// is one limiter per period whose own limit is never reached: it only counts, and keygate compares the count
// with the window's limit itself. A window's count is named by its period and subject only
// (`<prefix>rl:<period>:<key or tenant id>`, the insurance limiter's too), never by its limit: a key that changes
// its own limit keeps the count it has made (a new limit value starting an empty window let a key escape its
// limit by lowering it one step at a time), and a changed limit applies to that count at once. What is shared by
// windows of one size (WindowSpec) is stateless, so it lives in a bounded LRU and an evicted one is built again.
//
// Monthly quotas (issue 17, `requestsPerMonth` of a key and of its plan) are windows of period 'M' on the same
// leases, counted by a MonthCounter (calendar.ts) per calendar month (UTC) instead of a rate-limiter-flexible
// window; they differ in three ways. Their count carries no limit (a quota changed mid-month keeps what was
// used). A lease or request that does not fit is given back, so the count is exactly what was admitted. And a
// replica that finds a quota used up refuses locally for at most QUOTA_RECHECK_MS before asking Redis again
// (another replica may give back a lease, or the quota be raised), while Retry-After says when the month ends.
// A key's use counts against each monthly quota of its creator chain as well (keys/types.ts, QuotaOwner): one
// more window per creator with a quota, on that creator's own count.
// Management requests (`/keygate/v1`) are not counted against quotas, so an exhausted key can still read its
// usage. Crossing 80% and 100% of a quota emits `quota.threshold` (quota-events.ts).

type Period = 'm' | 'd' | 'M';
const DURATION: Record<'m' | 'd', number> = { m: 60, d: 86_400 };
const QUOTA_RECHECK_MS = 60_000;

const MAX_LEASE = 1_000;
/** A renewed lease is sized to about this much of the window's fleet-wide rate so far (see the top of this file). */
const LEASE_HORIZON_MS = 1_000;
/** The limiters' own limit: never reached, they only count (keygate compares the count with the window's limit). */
const COUNT_ONLY = Number.MAX_SAFE_INTEGER;
/** WindowSpecs kept for reuse; they hold no state, so more distinct sizes than this only cost a rebuild. */
const MAX_SPECS = 1_024;
const leaseSize = (points: number): number => Math.max(1, Math.min(MAX_LEASE, Math.floor(points / 100)));

/** What all windows of one scope, period and size share (no state: an evicted spec is built again, equal). */
class WindowSpec {
  readonly scope: 'key' | 'tenant';
  readonly limiter: Counter;
  /** The Redis key of a subject's count is `<prefix>rl:<period>:<id>`, whatever the limit. */
  readonly period: Period;
  readonly points: number;
  readonly leaseSize: number;
  /** The next lease is taken in the background when this few leased requests are left. */
  readonly refillAt: number;
  /** A monthly quota (period 'M'), not a rate limit. */
  readonly quota: boolean;
  /** The window's length; 0 for quotas, whose renewed leases keep the first size. */
  readonly durationMs: number;
  /** The largest renewed lease: 1% of the limit. */
  readonly maxLease: number;

  constructor(scope: WindowSpec['scope'], limiter: Counter, period: Period, points: number) {
    this.scope = scope;
    this.limiter = limiter;
    this.period = period;
    this.points = points;
    this.leaseSize = leaseSize(points);
    this.refillAt = this.leaseSize > 1 ? this.leaseSize >> 1 : -1;
    this.quota = period === 'M';
    this.durationMs = period === 'M' ? 0 : DURATION[period] * 1000;
    this.maxLease = Math.max(1, Math.floor(points / 100));
  }

  /**
   * The size of a lease renewed in the background: about LEASE_HORIZON_MS of the window's fleet-wide rate so far
   * (its count in Redis when this replica last leased, over the time since the window began), between the first
   * size and 1% of the limit, and only while the window is less than half full.
   */
  renewal(window: Window, now: number): number {
    if (this.durationMs === 0 || this.leaseSize === this.maxLease) return this.leaseSize;
    const counted = this.points - window.remaining;
    if (counted * 2 >= this.points) return this.leaseSize;
    const elapsed = Math.max(LEASE_HORIZON_MS, now - (window.windowEnds - this.durationMs));
    const horizon = Math.min(LEASE_HORIZON_MS, window.windowEnds - now);
    const size = Math.floor((counted * horizon) / elapsed);
    return Math.max(this.leaseSize, Math.min(this.maxLease, size));
  }
}

/**
 * Window times are kept in ms since this module loaded: small integers, which V8 stores in the object itself,
 * where a timestamp in ms since 1970 is a boxed number of 16 bytes per field and window (issue 18: memory per
 * cached key). After 24 days of uptime they outgrow that and are boxed again, with no other effect. 0 stays 0.
 */
const EPOCH = Date.now();
/** `| 0` makes the difference a small integer for V8 (arithmetic on timestamps yields a boxed number otherwise). */
const toStored = (ms: number): number => {
  const stored = ms === 0 ? 0 : ms - EPOCH;
  return stored > -0x40000000 && stored < 0x40000000 ? stored | 0 : stored;
};
const fromStored = (stored: number): number => (stored === 0 ? 0 : stored + EPOCH);

/**
 * One limit window of one subject (a key, or a tenant across all its keys), with this replica's lease on it.
 * Kept small (one per cached key and period): what windows have in common lives in their WindowSpec, the
 * subject is the key's own id string, and its Redis id is built only when Redis is asked.
 */
class Window {
  readonly spec: WindowSpec;
  /** The key or tenant id; a quota's count is `<tenantId>:<keyId|*>` whatever its limit (calendar.ts). */
  readonly subject: string;
  /** Leased requests not yet spent. */
  tokens = 0;
  /** Left in the window fleet-wide when the lease was taken, minus the lease. */
  remaining = 0;
  #ends = 0;
  /** The lease request under way, if any: concurrent requests wait for it and share it. */
  taking: Promise<unknown> | null = null;
  #blocked = 0;

  constructor(spec: WindowSpec, subject: string) {
    this.spec = spec;
    this.subject = subject;
  }

  /** The subject's count in the period's limiter: `<period>:<key or tenant id>` (a quota: the subject). */
  get id(): string {
    return this.spec.quota ? this.subject : `${this.spec.period}:${this.subject}`;
  }

  /** When the window ends (ms since 1970; 0: no window yet). */
  get windowEnds(): number {
    return fromStored(this.#ends);
  }

  set windowEnds(ms: number) {
    this.#ends = toStored(ms);
  }

  /** Full fleet-wide until then (a lease of any size found not one request left): answered here, without asking Redis. */
  get blockedUntil(): number {
    return fromStored(this.#blocked);
  }

  set blockedUntil(ms: number) {
    this.#blocked = toStored(ms);
  }

  live(now: number): boolean {
    return this.tokens > 0 && this.#ends !== 0 && this.#ends + EPOCH > now;
  }

  /** Left in the window as this replica knows it. */
  get left(): number {
    return this.remaining + this.tokens;
  }
}

type Result = { window: Window; ok: boolean; remaining: number; msBeforeNext: number };

/**
 * A key's windows: `rates` without its monthly quotas (for management requests). A key without quota windows
 * (most) is held as its one array, without this object around it.
 */
interface KeyWindows {
  all: Window[];
  rates: Window[];
}

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
  /** One counting limiter per rate-limit period (see the top of this file). */
  readonly #limiters = new Map<'m' | 'd', RateLimiterAbstract>();
  /** The monthly quotas' counter (calendar.ts); null: keys get no monthly quota windows. */
  readonly #months: Counter | null;
  readonly #onQuota: (event: QuotaThreshold) => void;
  readonly #specs = new LRUCache<string, WindowSpec>({ maxSize: MAX_SPECS, sizeCalculation: () => 1 });
  readonly #onFallback: () => void;
  /** A key's windows, built once per cached key record (a refresh that changes nothing keeps the record). */
  readonly #byKey = new WeakMap<AuthKey, KeyWindows | Window[]>();
  /** Tenant windows, shared by all of a tenant's keys so that they spend one lease (bounded by count; lru-cache
   *  preallocates for `max`, so the bound is a size of one per entry). */
  readonly #byTenant = new LRUCache<string, Window>({ maxSize: 100_000, sizeCalculation: () => 1 });

  constructor(opts: {
    redis: RedisClient | null;
    prefix: string;
    plans: Config['plans'];
    onFallback?: () => void;
    /** Counts monthly quotas; without it, quotas are not enforced. */
    months?: Counter;
    onQuotaThreshold?: (event: QuotaThreshold) => void;
  }) {
    this.#redis = opts.redis;
    this.#prefix = opts.prefix;
    this.#plans = opts.plans;
    this.#onFallback = opts.onFallback ?? (() => {});
    this.#months = opts.months ?? null;
    this.#onQuota = opts.onQuotaThreshold ?? (() => {});
  }

  /** How many limiter and WindowSpec objects this instance holds (bounded whatever limits keys are given). */
  get size(): { limiters: number; specs: number; tenantWindows: number } {
    return { limiters: this.#limiters.size, specs: this.#specs.size, tenantWindows: this.#byTenant.size };
  }

  /** The period's counting limiter (its own limit is never reached: the windows compare counts themselves). */
  #limiter(period: Period): Counter {
    if (period === 'M') return this.#months!;
    let limiter = this.#limiters.get(period);
    if (limiter) return limiter;
    const base = { points: COUNT_ONLY, duration: DURATION[period], keyPrefix: `${this.#prefix}rl` };
    if (this.#redis) {
      const insurance = new InsuranceLimiter(base, this.#onFallback);
      limiter = new RateLimiterRedis({ ...base, storeClient: this.#redis, rejectIfRedisNotReady: true, insuranceLimiter: insurance });
    } else {
      limiter = new RateLimiterMemory(base);
    }
    this.#limiters.set(period, limiter);
    return limiter;
  }

  #windows(identity: Identity, quotas: boolean): Window[] {
    let windows = this.#byKey.get(identity.key);
    if (!windows) this.#byKey.set(identity.key, (windows = this.#buildWindows(identity)));
    return Array.isArray(windows) ? windows : quotas ? windows.all : windows.rates;
  }

  #spec(scope: WindowSpec['scope'], period: Period, points: number): WindowSpec {
    const name = `${scope}${period}${points}`;
    let spec = this.#specs.get(name);
    if (!spec) this.#specs.set(name, (spec = new WindowSpec(scope, this.#limiter(period), period, points)));
    return spec;
  }

  #buildWindows({ key, tenant }: Identity): KeyWindows | Window[] {
    const out: Window[] = [];
    const plan = this.#plans[tenant.plan];
    const forKey = (period: Period, points: number | null | undefined) => {
      if (points) out.push(new Window(this.#spec('key', period, points), period === 'M' ? `${tenant.id}:${key.id}` : key.id));
    };
    const forTenant = (period: Period, points: number | null | undefined) => {
      if (!points) return;
      const name = `${period}${points}:${tenant.id}`;
      let window = this.#byTenant.get(name);
      if (!window) this.#byTenant.set(name, (window = new Window(this.#spec('tenant', period, points), period === 'M' ? `${tenant.id}:*` : tenant.id)));
      out.push(window);
    };
    forKey('m', key.policy.rateLimit.requestsPerMinute);
    forKey('d', key.policy.rateLimit.requestsPerDay);
    forTenant('m', plan?.requestsPerMinute.max);
    forTenant('d', plan?.requestsPerDay.max);
    const rates = out.slice(); // an exact-size copy: an array grown by push keeps room for 16 (there is one per cached key)
    if (!this.#months) return rates;
    forKey('M', key.policy.quota?.requestsPerMonth);
    forTenant('M', plan?.requestsPerMonth?.max);
    // Every creator's monthly quota too, on that creator's own count: minting a child cannot create quota. (After
    // the tenant's, so a refusal where both run out at once names the tenant, as one without children does.)
    for (const owner of key.policy.quotaChain ?? []) {
      if (owner.requestsPerMonth) out.push(new Window(this.#spec('key', 'M', owner.requestsPerMonth), `${tenant.id}:${owner.keyId}`));
    }
    return out.length === rates.length ? rates : { all: out.slice(), rates };
  }

  /** A monthly quota's count went from `before` to `after`: the thresholds crossed are announced (quota-events.ts). */
  #announce(window: Window, before: number, after: number): void {
    if (!window.spec.quota) return;
    const points = window.spec.points;
    for (const threshold of crossed(before, after, points)) {
      const colon = window.id.indexOf(':');
      const keyId = window.id.slice(colon + 1);
      this.#onQuota({
        type: 'quota.threshold',
        tenantId: window.id.slice(0, colon),
        keyId: keyId === '*' ? null : keyId,
        quota: 'requestsPerMonth',
        threshold,
        limit: points,
        used: Math.min(after, points),
        period: monthOf(Date.now()),
        at: new Date().toISOString(),
      });
    }
  }

  /**
   * One lease request per window at a time; concurrent requests wait for it and share it, or its refusal.
   * (A window already known to be full never gets here: consume() refuses first.)
   */
  async #take(window: Window, now: number): Promise<Result> {
    // Single-request leases have nothing to share: no waiting in line.
    if (window.spec.leaseSize === 1) return this.#takeLease(window, now);
    while (window.taking) {
      await window.taking;
      now = Date.now();
      if (window.live(now)) return this.#spend(window, now);
      if (window.blockedUntil > now) return { window, ok: false, remaining: 0, msBeforeNext: window.windowEnds - now };
    }
    const taking = this.#takeLease(window, now);
    window.taking = taking.catch(() => undefined);
    try {
      return await taking;
    } finally {
      window.taking = null;
    }
  }

  /** Spends one request of a live lease; with half of a first lease's size left, the next is asked for in the background. */
  #spendOne(window: Window): void {
    if (--window.tokens === window.spec.refillAt && window.taking === null) this.#refill(window);
  }

  #spend(window: Window, now: number): Result {
    this.#spendOne(window);
    return { window, ok: true, remaining: window.left, msBeforeNext: window.windowEnds - now };
  }

  /** Takes the next lease while the current one still serves requests. */
  #refill(window: Window): void {
    const taking = (async () => {
      const { limiter, points } = window.spec;
      const now = Date.now();
      const size = window.spec.renewal(window, now);
      try {
        const res = await limiter.consume(window.id, size);
        if (res.consumedPoints > points) {
          // Fewer than a lease left (the end of a window) is left to the request that runs out: give it back.
          // A quota's count is what was admitted, so it gets back even a lease that found nothing left.
          if (res.consumedPoints - size < points || window.spec.quota) await limiter.reward(window.id, size).catch(() => {});
          return;
        }
        this.#announce(window, res.consumedPoints - size, res.consumedPoints);
        const ends = now + res.msBeforeNext;
        // A lease from a later window than the one being spent replaces it: the leftover of the old window
        // is not spent in the new one (it was counted in the old), so the fleet still never exceeds a limit.
        if (ends > window.windowEnds + 1_000 || !window.live(now)) {
          window.tokens = size;
          window.windowEnds = ends;
        } else {
          window.tokens += size;
        }
        window.remaining = points - res.consumedPoints;
      } catch {
        // A store failure: the request that runs out of the current lease asks again (and meets the failure).
      }
    })();
    window.taking = taking;
    void taking.finally(() => {
      if (window.taking === taking) window.taking = null;
    });
  }

  async #takeLease(window: Window, now: number): Promise<Result> {
    const { limiter, points } = window.spec;
    let size = window.spec.leaseSize;
    for (;;) {
      const res = await limiter.consume(window.id, size); // only a store failure throws (the limiter only counts)
      if (res.consumedPoints <= points) {
        this.#announce(window, res.consumedPoints - size, res.consumedPoints);
        const remaining = points - res.consumedPoints;
        window.tokens = size - 1;
        window.remaining = remaining;
        window.windowEnds = now + res.msBeforeNext;
        return { window, ok: true, remaining: remaining + size - 1, msBeforeNext: res.msBeforeNext };
      }
      // Fewer than a lease left in the window: give the lease back and ask for this one request.
      if (size > 1 && res.consumedPoints - size < points) {
        await limiter.reward(window.id, size);
        size = 1;
        continue;
      }
      // Not even one request was left (whatever size was asked for): the window stays full until it ends, so
      // this replica says so itself, without asking Redis again on every request (a quota: not for a month).
      if (window.spec.quota) await limiter.reward(window.id, size);
      window.tokens = 0;
      window.windowEnds = now + res.msBeforeNext;
      window.blockedUntil = now + (window.spec.quota ? Math.min(res.msBeforeNext, QUOTA_RECHECK_MS) : res.msBeforeNext);
      return { window, ok: false, remaining: 0, msBeforeNext: res.msBeforeNext };
    }
  }

  consume(identity: Identity, quotas = true): RateVerdict | Promise<RateVerdict> | null {
    const windows = this.#windows(identity, quotas);
    if (windows.length === 0) return null;
    const now = Date.now();
    if (allLive(windows, now)) {
      // Every window has a live lease: spend one request from each, no Redis call, no promise.
      let tightest = windows[0]!;
      for (const w of windows) {
        this.#spendOne(w);
        if (w.left < tightest.left) tightest = w;
      }
      return { ok: true, limit: tightest.spec.points, remaining: tightest.left, resetSeconds: seconds(tightest.windowEnds - now) };
    }
    // A window this replica knows to be full refuses the request before any other window is charged for it, so
    // a client over its per-minute limit does not spend its per-day allowance on refusals (as Kong's
    // rate-limiting plugin). A refusal that only Redis can tell (the window filled elsewhere, or by this very
    // request) still counts in the other windows: once per window end and replica.
    const full = longestBlocked(windows, now);
    if (full) return refusal(full.spec, full.windowEnds - now);
    const results = windows.map((w): Result | Promise<Result> => (w.live(now) ? this.#spend(w, now) : this.#take(w, now)));
    return Promise.all(results).then(settle);
  }
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function allLive(windows: Window[], now: number): boolean {
  for (const w of windows) if (!w.live(now)) return false;
  return true;
}

/** Of the windows known to be full until later than `now`, the one that stays full longest (until its end). */
function longestBlocked(windows: Window[], now: number): Window | null {
  let full: Window | null = null;
  for (const w of windows) if (w.blockedUntil > now && (!full || w.windowEnds > full.windowEnds)) full = w;
  return full;
}

function refusal(spec: WindowSpec, msBeforeNext: number): RateVerdict {
  const wait = seconds(msBeforeNext);
  const [code, scope] = spec.quota ? (['quota_exceeded', `${spec.scope}_quota`] as const) : (['rate_limited', spec.scope] as const);
  return { ok: false, code, scope, retryAfterSeconds: wait, limit: spec.points, remaining: 0, resetSeconds: wait };
}

/**
 * The verdict of windows asked at once. A refused request gives its quota windows their request back (to this
 * replica's lease, so the count in Redis stays what was admitted plus what is leased), so a key over its
 * per-minute limit does not spend its month on refusals.
 */
function settle(results: Result[]): RateVerdict {
  const verdict = verdictOf(results);
  if (!verdict.ok) for (const r of results) if (r.ok && r.window.spec.quota) r.window.tokens++;
  return verdict;
}

/** The refusal that lasts longest, or else the window with the fewest requests left (the tightest). */
function verdictOf(results: Result[]): RateVerdict {
  let worst: Result | null = null;
  let tightest = results[0]!;
  for (const r of results) {
    if (!r.ok && (!worst || r.msBeforeNext > worst.msBeforeNext)) worst = r;
    if (r.remaining < tightest.remaining) tightest = r;
  }
  if (worst) return refusal(worst.window.spec, worst.msBeforeNext);
  return { ok: true, limit: tightest.window.spec.points, remaining: tightest.remaining, resetSeconds: seconds(tightest.msBeforeNext) };
}
