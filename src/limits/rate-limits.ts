import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from './limiter-classes.ts';
import type { AuthKey } from '../keys/types.ts';
import type { Config } from '../config/schema.ts';
import type { RedisClient } from '../store/redis/connect.ts';
import { monthOf, type Counter } from './calendar.ts';
import { crossed, type QuotaThreshold } from './quota-events.ts';
import type { Charged, RateLimits, RateVerdict } from './types.ts';

// Per-key requestsPerMinute / requestsPerDay, and per-tenant limits across all its keys (the plan's
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
// second costs about one call a second per window, not one per 1,000 requests. What a replica
// leased and did not spend before the window ended is lost: at most one and a half leases (1.5% of the limit)
// per replica and window; and since leases grow only in the window's first half, a window that fills is
// filled by leases of the first size, as before. Limits under 200 lease one request at a time, i.e. exactly
// as rate-limiter-flexible alone.
//
// Bounded state: rate-limiter-flexible fixes `points` per limiter instance, so one limiter per
// distinct limit value would grow with every value a key was ever PATCHed to, and never shrink. Instead there
// is one limiter per period whose own limit is never reached: it only counts, and keygate compares the count
// with the window's limit itself. A window's count is named by its period and subject only
// (`<prefix>rl:<period>:<key or tenant id>`, the insurance limiter's too), never by its limit: a key that changes
// its own limit keeps the count it has made (a new limit value starting an empty window let a key escape its
// limit by lowering it one step at a time), and a changed limit applies to that count at once. What is shared by
// windows of one size (WindowSpec) is stateless, so it lives in a bounded LRU and an evicted one is built again.
//
// Monthly quotas (`requestsPerMonth` of a key and of its plan) are windows of period 'M' on the same
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
  renewal(remaining: number, windowEnds: number, now: number): number {
    if (this.durationMs === 0 || this.leaseSize === this.maxLease) return this.leaseSize;
    const counted = this.points - remaining;
    if (counted * 2 >= this.points) return this.leaseSize;
    const elapsed = Math.max(LEASE_HORIZON_MS, now - (windowEnds - this.durationMs));
    const horizon = Math.min(LEASE_HORIZON_MS, windowEnds - now);
    const size = Math.floor((counted * horizon) / elapsed);
    return Math.max(this.leaseSize, Math.min(this.maxLease, size));
  }
}

/**
 * Window times are kept in ms since this module loaded: small integers, which V8 stores in the object itself,
 * where a timestamp in ms since 1970 is a boxed number of 16 bytes per field and window (memory per
 * cached key). After 24 days of uptime they outgrow that and are boxed again, with no other effect. 0 stays 0.
 */
const EPOCH = Date.now();
/** `| 0` makes the difference a small integer for V8 (arithmetic on timestamps yields a boxed number otherwise). */
const toStored = (ms: number): number => {
  const stored = ms === 0 ? 0 : ms - EPOCH;
  return stored > -0x40000000 && stored < 0x40000000 ? stored | 0 : stored;
};
const fromStored = (stored: number): number => (stored === 0 ? 0 : stored + EPOCH);

/** A window of a lease: Rates has two (0 the minute, 1 the day), Quota one (0). */
type Slot = 0 | 1;
const SLOTS: readonly Slot[] = [0, 1];

/**
 * Leases on limit windows, with this replica's state of each: a subject's minute and day windows together
 * (Rates), or one monthly quota (Quota). A window is a lease and a slot. The lease request under way for a
 * window is not kept here but in RateLimitsImpl#taking (there are few at any time, and one field per window
 * costs 8 bytes per cached key).
 */
abstract class Lease {
  /** The window in slot `i`, or null when the subject has none there. */
  abstract spec(i: Slot): WindowSpec | null;
  /** Whose count it is: a key or tenant id, or for a quota `<tenantId>:<keyId|*>` (calendar.ts). */
  abstract subject(i: Slot, who: Charged): string;
  /** Leased requests not yet spent. */
  abstract tokens(i: Slot): number;
  abstract setTokens(i: Slot, n: number): void;
  /** Left in the window fleet-wide when the lease was taken, minus the lease. */
  abstract remaining(i: Slot): number;
  abstract setRemaining(i: Slot, n: number): void;
  /** When the window ends (ms since 1970; 0: no window yet). */
  abstract windowEnds(i: Slot): number;
  abstract setWindowEnds(i: Slot, ms: number): void;
  /** Full fleet-wide until then (a lease of any size found not one request left): answered here, without asking Redis. */
  abstract blockedUntil(i: Slot): number;
  /** Found full: no lease; the window ends at `ends`, and is refused here until `until`. */
  abstract block(i: Slot, ends: number, until: number): void;
  abstract live(i: Slot, now: number): boolean;

  /** Left in the window as this replica knows it. */
  left(i: Slot): number {
    const tokens = this.tokens(i);
    return this.remaining(i) + (tokens > 0 ? tokens : 0);
  }
}

/** The minute and day window sizes of one kind of subject, shared by all subjects with the same two limits. */
class RateSpecs {
  /** The limits instance whose state these are (another instance in the process keeps its own: see #head). */
  readonly owner: RateLimitsImpl;
  readonly scope: 'key' | 'tenant';
  readonly m: WindowSpec | null;
  readonly d: WindowSpec | null;
  constructor(owner: RateLimitsImpl, scope: 'key' | 'tenant', m: WindowSpec | null, d: WindowSpec | null) {
    this.owner = owner;
    this.scope = scope;
    this.m = m;
    this.d = d;
  }
}

/** `tokens` of a rate window found full: refused here until the window ends (its end is the block's). */
const FULL = -1;

/**
 * A subject's minute and day windows (a key's own, or a tenant's across all its keys), in one object of small
 * integers: one per cached key, hung on the key's record (AuthKey.limits), where two window objects, an array of
 * them and a WeakMap entry were (266 of a cached key's 586 bytes). The subject's id is the request's own key or
 * tenant id, read when Redis is asked. A key's head also names the windows charged after its own: its tenant's
 * Rates (shared), then its monthly quotas.
 */
class Rates extends Lease {
  readonly specs: RateSpecs;
  /** The windows after these, in order; null: none. Never set on a tenant's (shared) Rates. */
  readonly rest: readonly Lease[] | null;
  #t0 = 0;
  #r0 = 0;
  #e0 = 0;
  #t1 = 0;
  #r1 = 0;
  #e1 = 0;

  constructor(specs: RateSpecs, rest: readonly Lease[] | null) {
    super();
    this.specs = specs;
    this.rest = rest;
  }

  spec(i: Slot): WindowSpec | null {
    return i === 0 ? this.specs.m : this.specs.d;
  }

  subject(_i: Slot, who: Charged): string {
    return this.specs.scope === 'key' ? who.key.id : who.tenant.id;
  }

  tokens(i: Slot): number {
    return i === 0 ? this.#t0 : this.#t1;
  }

  setTokens(i: Slot, n: number): void {
    if (i === 0) this.#t0 = n;
    else this.#t1 = n;
  }

  remaining(i: Slot): number {
    return i === 0 ? this.#r0 : this.#r1;
  }

  setRemaining(i: Slot, n: number): void {
    if (i === 0) this.#r0 = n;
    else this.#r1 = n;
  }

  windowEnds(i: Slot): number {
    return fromStored(i === 0 ? this.#e0 : this.#e1);
  }

  setWindowEnds(i: Slot, ms: number): void {
    if (i === 0) this.#e0 = toStored(ms);
    else this.#e1 = toStored(ms);
  }

  blockedUntil(i: Slot): number {
    return this.tokens(i) === FULL ? this.windowEnds(i) : 0;
  }

  /** A rate window is refused until it ends (`until` is its end). */
  block(i: Slot, ends: number): void {
    this.setTokens(i, FULL);
    this.setWindowEnds(i, ends);
  }

  live(i: Slot, now: number): boolean {
    const tokens = i === 0 ? this.#t0 : this.#t1;
    const ends = i === 0 ? this.#e0 : this.#e1;
    return tokens > 0 && ends !== 0 && ends + EPOCH > now;
  }
}

/** One monthly quota window (a key's, its tenant's, or a creator's), with this replica's lease on it. */
class Quota extends Lease {
  readonly #spec: WindowSpec;
  readonly #subject: string;
  #tokens = 0;
  #remaining = 0;
  #ends = 0;
  #blocked = 0;

  constructor(spec: WindowSpec, subject: string) {
    super();
    this.#spec = spec;
    this.#subject = subject;
  }

  spec(i: Slot): WindowSpec | null {
    return i === 0 ? this.#spec : null;
  }

  subject(): string {
    return this.#subject;
  }

  tokens(): number {
    return this.#tokens;
  }

  setTokens(_i: Slot, n: number): void {
    this.#tokens = n;
  }

  remaining(): number {
    return this.#remaining;
  }

  setRemaining(_i: Slot, n: number): void {
    this.#remaining = n;
  }

  windowEnds(): number {
    return fromStored(this.#ends);
  }

  setWindowEnds(_i: Slot, ms: number): void {
    this.#ends = toStored(ms);
  }

  blockedUntil(): number {
    return fromStored(this.#blocked);
  }

  block(_i: Slot, ends: number, until: number): void {
    this.#tokens = 0;
    this.#ends = toStored(ends);
    this.#blocked = toStored(until);
  }

  live(_i: Slot, now: number): boolean {
    return this.#tokens > 0 && this.#ends !== 0 && this.#ends + EPOCH > now;
  }
}

/** The subject's count in the period's limiter: `<period>:<key or tenant id>` (a quota: the subject). */
const idOf = (lease: Lease, i: Slot, who: Charged): string => {
  const spec = lease.spec(i)!;
  return spec.quota ? lease.subject(i, who) : `${spec.period}:${lease.subject(i, who)}`;
};

type Result = { lease: Lease; i: Slot; ok: boolean; remaining: number; msBeforeNext: number };

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
  /** Pairs of minute and day specs, as subjects hold them (stateless, as the specs). */
  readonly #pairs = new LRUCache<string, RateSpecs>({ maxSize: MAX_SPECS, sizeCalculation: () => 1 });
  readonly #noRates = new RateSpecs(this, 'key', null, null);
  /** The head of a key with no window at all. */
  readonly #none = new Rates(this.#noRates, null);
  readonly #onFallback: () => void;
  /**
   * Heads of keys whose record holds another instance's (tests run several replicas in one process on the same
   * records; a process's server has one instance, so this stays empty there). Goes with the records.
   */
  readonly #others = new WeakMap<AuthKey, Rates>();
  /** Tenant windows, shared by all of a tenant's keys so that they spend one lease (bounded by count; lru-cache
   *  preallocates for `max`, so the bound is a size of one per entry). */
  readonly #byTenant = new LRUCache<string, Lease>({ maxSize: 100_000, sizeCalculation: () => 1 });
  /** A tenant's Rates as the whole rest of its keys' windows: one array shared by those keys. Goes with the Rates. */
  readonly #tails = new WeakMap<Lease, readonly Lease[]>();
  /** The lease request under way per window (slot 0 and 1), while it runs: concurrent requests wait for it and share it. */
  readonly #taking: readonly [Map<Lease, Promise<unknown>>, Map<Lease, Promise<unknown>>] = [new Map(), new Map()];

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
  get size(): { limiters: number; specs: number; pairs: number; tenantWindows: number; leasesUnderWay: number } {
    return {
      limiters: this.#limiters.size,
      specs: this.#specs.size,
      pairs: this.#pairs.size,
      tenantWindows: this.#byTenant.size,
      leasesUnderWay: this.#taking[0].size + this.#taking[1].size,
    };
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

  /** The first of a key's leases, built once per cached key record (a refresh that changes nothing keeps the record). */
  #head(identity: Charged): Rates {
    const key = identity.key;
    const held = key.limits as Rates | undefined;
    if (held !== undefined && held.specs.owner === this) return held;
    if (held === undefined) return (key.limits = this.#build(identity));
    let head = this.#others.get(key);
    if (!head) this.#others.set(key, (head = this.#build(identity)));
    return head;
  }

  #spec(scope: WindowSpec['scope'], period: Period, points: number): WindowSpec {
    const name = `${scope}${period}${points}`;
    let spec = this.#specs.get(name);
    if (!spec) this.#specs.set(name, (spec = new WindowSpec(scope, this.#limiter(period), period, points)));
    return spec;
  }

  #rateSpecs(scope: 'key' | 'tenant', m: number | null | undefined, d: number | null | undefined): RateSpecs {
    if (!m && !d) return this.#noRates;
    const name = `${scope}${m || 0}/${d || 0}`;
    let pair = this.#pairs.get(name);
    if (!pair) this.#pairs.set(name, (pair = new RateSpecs(this, scope, m ? this.#spec(scope, 'm', m) : null, d ? this.#spec(scope, 'd', d) : null)));
    return pair;
  }

  #tenantLease(name: string, build: () => Lease): Lease {
    let lease = this.#byTenant.get(name);
    if (!lease) this.#byTenant.set(name, (lease = build()));
    return lease;
  }

  #build({ key, tenant }: Charged): Rates {
    const plan = this.#plans[tenant.plan];
    const own = this.#rateSpecs('key', key.policy.rateLimit.requestsPerMinute, key.policy.rateLimit.requestsPerDay);
    const tm = plan?.requestsPerMinute.max;
    const td = plan?.requestsPerDay.max;
    const shared = tm || td ? this.#tenantLease(`r${tm || 0}/${td || 0}:${tenant.id}`, () => new Rates(this.#rateSpecs('tenant', tm, td), null)) : null;
    const quotas: Lease[] = [];
    if (this.#months) {
      const keyQuota = key.policy.quota?.requestsPerMonth;
      if (keyQuota) quotas.push(new Quota(this.#spec('key', 'M', keyQuota), `${tenant.id}:${key.id}`));
      const tenantQuota = plan?.requestsPerMonth?.max;
      if (tenantQuota) quotas.push(this.#tenantLease(`M${tenantQuota}:${tenant.id}`, () => new Quota(this.#spec('tenant', 'M', tenantQuota), `${tenant.id}:*`)));
      // Every creator's monthly quota too, on that creator's own count: minting a child cannot create quota. (After
      // the tenant's, so a refusal where both run out at once names the tenant, as one without children does.)
      for (const owner of key.policy.quotaChain ?? []) {
        if (owner.requestsPerMonth) quotas.push(new Quota(this.#spec('key', 'M', owner.requestsPerMonth), `${tenant.id}:${owner.keyId}`));
      }
    }
    if (quotas.length > 0) return new Rates(own, shared ? [shared, ...quotas] : quotas);
    if (own === this.#noRates) return shared ? (shared as Rates) : this.#none; // nothing of the key's own to hold
    if (!shared) return new Rates(own, null);
    let tail = this.#tails.get(shared);
    if (!tail) this.#tails.set(shared, (tail = [shared]));
    return new Rates(own, tail);
  }

  /** A monthly quota's count went from `before` to `after`: the thresholds crossed are announced (quota-events.ts). */
  #announce(spec: WindowSpec, id: string, before: number, after: number): void {
    if (!spec.quota) return;
    const points = spec.points;
    for (const threshold of crossed(before, after, points)) {
      const colon = id.indexOf(':');
      const keyId = id.slice(colon + 1);
      this.#onQuota({
        type: 'quota.threshold',
        tenantId: id.slice(0, colon),
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
  async #take(lease: Lease, i: Slot, who: Charged, now: number): Promise<Result> {
    // Single-request leases have nothing to share: no waiting in line.
    if (lease.spec(i)!.leaseSize === 1) return this.#takeLease(lease, i, who, now);
    const under = this.#taking[i];
    for (let waiting = under.get(lease); waiting !== undefined; waiting = under.get(lease)) {
      await waiting;
      now = Date.now();
      if (lease.live(i, now)) return this.#spend(lease, i, who, now);
      if (lease.blockedUntil(i) > now) return { lease, i, ok: false, remaining: 0, msBeforeNext: lease.windowEnds(i) - now };
    }
    const taking = this.#takeLease(lease, i, who, now);
    const mark = taking.catch(() => undefined);
    under.set(lease, mark);
    try {
      return await taking;
    } finally {
      if (under.get(lease) === mark) under.delete(lease);
    }
  }

  /** Spends one request of a live lease; with half of a first lease's size left, the next is asked for in the background. */
  #spendOne(lease: Lease, i: Slot, who: Charged): void {
    const tokens = lease.tokens(i) - 1;
    lease.setTokens(i, tokens);
    if (tokens === lease.spec(i)!.refillAt && !this.#taking[i].has(lease)) this.#refill(lease, i, who);
  }

  #spend(lease: Lease, i: Slot, who: Charged, now: number): Result {
    this.#spendOne(lease, i, who);
    return { lease, i, ok: true, remaining: lease.left(i), msBeforeNext: lease.windowEnds(i) - now };
  }

  /** Takes the next lease while the current one still serves requests. */
  #refill(lease: Lease, i: Slot, who: Charged): void {
    const spec = lease.spec(i)!;
    const id = idOf(lease, i, who);
    const taking = (async () => {
      const { limiter, points } = spec;
      const now = Date.now();
      const size = spec.renewal(lease.remaining(i), lease.windowEnds(i), now);
      try {
        const res = await limiter.consume(id, size);
        if (res.consumedPoints > points) {
          // Fewer than a lease left (the end of a window) is left to the request that runs out: give it back.
          // A quota's count is what was admitted, so it gets back even a lease that found nothing left.
          if (res.consumedPoints - size < points || spec.quota) await limiter.reward(id, size).catch(() => {});
          return;
        }
        this.#announce(spec, id, res.consumedPoints - size, res.consumedPoints);
        const ends = now + res.msBeforeNext;
        // A lease from a later window than the one being spent replaces it: the leftover of the old window
        // is not spent in the new one (it was counted in the old), so the fleet still never exceeds a limit.
        if (ends > lease.windowEnds(i) + 1_000 || !lease.live(i, now)) {
          lease.setTokens(i, size);
          lease.setWindowEnds(i, ends);
        } else {
          lease.setTokens(i, lease.tokens(i) + size);
        }
        lease.setRemaining(i, points - res.consumedPoints);
      } catch {
        // A store failure: the request that runs out of the current lease asks again (and meets the failure).
      }
    })();
    const under = this.#taking[i];
    under.set(lease, taking);
    void taking.finally(() => {
      if (under.get(lease) === taking) under.delete(lease);
    });
  }

  async #takeLease(lease: Lease, i: Slot, who: Charged, now: number): Promise<Result> {
    const spec = lease.spec(i)!;
    const { limiter, points } = spec;
    const id = idOf(lease, i, who);
    let size = spec.leaseSize;
    for (;;) {
      const res = await limiter.consume(id, size); // only a store failure throws (the limiter only counts)
      if (res.consumedPoints <= points) {
        this.#announce(spec, id, res.consumedPoints - size, res.consumedPoints);
        const remaining = points - res.consumedPoints;
        lease.setTokens(i, size - 1);
        lease.setRemaining(i, remaining);
        lease.setWindowEnds(i, now + res.msBeforeNext);
        return { lease, i, ok: true, remaining: remaining + size - 1, msBeforeNext: res.msBeforeNext };
      }
      // Fewer than a lease left in the window: give the lease back and ask for this one request.
      if (size > 1 && res.consumedPoints - size < points) {
        await limiter.reward(id, size);
        size = 1;
        continue;
      }
      // Not even one request was left (whatever size was asked for): the window stays full until it ends, so
      // this replica says so itself, without asking Redis again on every request (a quota: not for a month).
      if (spec.quota) await limiter.reward(id, size);
      lease.block(i, now + res.msBeforeNext, now + (spec.quota ? Math.min(res.msBeforeNext, QUOTA_RECHECK_MS) : res.msBeforeNext));
      return { lease, i, ok: false, remaining: 0, msBeforeNext: res.msBeforeNext };
    }
  }

  consume(identity: Charged, quotas = true): RateVerdict | Promise<RateVerdict> | null {
    const head = this.#head(identity);
    const now = Date.now();
    const live = liveWindows(head, quotas, now);
    if (live === 0) return null;
    if (live > 0) {
      // Every window has a live lease: spend one request from each, no Redis call, no promise.
      let tightest: Lease = head;
      let slot: Slot = 0;
      let left = Infinity;
      for (let k = 0, leases = leaseCount(head); k < leases; k++) {
        const lease = leaseAt(head, k);
        if (!quotas && lease instanceof Quota) break;
        for (const i of SLOTS) {
          if (lease.spec(i) === null) continue;
          this.#spendOne(lease, i, identity);
          const l = lease.left(i);
          if (l < left) {
            tightest = lease;
            slot = i;
            left = l;
          }
        }
      }
      return { ok: true, limit: tightest.spec(slot)!.points, remaining: left, resetSeconds: seconds(tightest.windowEnds(slot) - now) };
    }
    const windows = windowsOf(head, quotas);
    // A window this replica knows to be full refuses the request before any other window is charged for it, so
    // a client over its per-minute limit does not spend its per-day allowance on refusals (as Kong's
    // rate-limiting plugin). A refusal that only Redis can tell (the window filled elsewhere, or by this very
    // request) still counts in the other windows: once per window end and replica.
    let full: [Lease, Slot] | null = null;
    for (const w of windows) if (w[0].blockedUntil(w[1]) > now && (!full || w[0].windowEnds(w[1]) > full[0].windowEnds(full[1]))) full = w;
    if (full) return refusal(full[0].spec(full[1])!, full[0].windowEnds(full[1]) - now);
    const results = windows.map(([lease, i]): Result | Promise<Result> => (lease.live(i, now) ? this.#spend(lease, i, identity, now) : this.#take(lease, i, identity, now)));
    return Promise.all(results).then(settle);
  }
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

// A key's leases without an array per request: its rates record first, then what it carries in `rest`.
const leaseCount = (head: Rates): number => (head.rest === null ? 1 : head.rest.length + 1);
const leaseAt = (head: Rates, k: number): Lease => (k === 0 ? head : head.rest![k - 1]!);

/** How many windows the key is charged in, when every one has a live lease; -1 when one has not. */
function liveWindows(head: Rates, quotas: boolean, now: number): number {
  let windows = 0;
  for (let k = 0, leases = leaseCount(head); k < leases; k++) {
    const lease = leaseAt(head, k);
    if (!quotas && lease instanceof Quota) break;
    for (const i of SLOTS) {
      if (lease.spec(i) === null) continue;
      if (!lease.live(i, now)) return -1;
      windows++;
    }
  }
  return windows;
}

/** The key's windows in the order they are charged: its own, its tenant's, then (with `quotas`) its monthly quotas. */
function windowsOf(head: Rates, quotas: boolean): Array<[Lease, Slot]> {
  const out: Array<[Lease, Slot]> = [];
  for (const lease of [head, ...(head.rest ?? [])]) {
    if (!quotas && lease instanceof Quota) break;
    for (const i of SLOTS) if (lease.spec(i) !== null) out.push([lease, i]);
  }
  return out;
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
  if (!verdict.ok) for (const r of results) if (r.ok && r.lease.spec(r.i)!.quota) r.lease.setTokens(r.i, r.lease.tokens(r.i) + 1);
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
  if (worst) return refusal(worst.lease.spec(worst.i)!, worst.msBeforeNext);
  return { ok: true, limit: tightest.lease.spec(tightest.i)!.points, remaining: tightest.remaining, resetSeconds: seconds(tightest.msBeforeNext) };
}
