import { LRUCache } from 'lru-cache';
import type { Identity } from '../auth/verify.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../ops/logger.ts';
import type { RedisClient } from '../store/redis/redis-store.ts';
import { COUNTER_SLACK_MS, monthEnd, monthOf } from './calendar.ts';
import { crossed, type QuotaThreshold } from './quota-events.ts';

// Session minutes per calendar month (issue 17: `sessionMinutesPerMonth` of a key, and of its plan for all the
// tenant's keys together), enforced across replicas by reserving time before it is used, as the request leases
// do: a live session holds a reservation of up to SLICE_MS in Redis (the key's, its creators' (keys/types.ts,
// QuotaOwner) and the tenant's counters, one script, never more than any has left) and takes the next one when
// less than `sessionWarningSeconds` + AHEAD_MS of it is left. So a session costs one Redis call per minute, not
// per frame, and the fleet never hands out more than a quota. A reservation that comes back short is the quota's end for that session: it is warned
// `sessionWarningSeconds` before (a log line; the reservation that handed out the last minutes emitted the
// 100% `quota.threshold` event) and closed `sessionGraceSeconds` after it (1008 quota_exceeded), checked every
// second. A session that ends gives back what it reserved and did not use.
//
// Worst case over a quota, per key or tenant: each live session's grace, plus up to a second each (the check's
// period). A crash loses nothing to the client's advantage: its sessions' unused reservations (at most
// SLICE_MS + the look-ahead each) stay counted until the month ends. While Redis is unreachable live sessions
// are not cut (as cached keys keep working, SPEC §8) and their time is not charged; new sessions get 503.

/** Time reserved per Redis call. */
export const SLICE_MS = 60_000;
/** A reservation is taken this long before the warning is due (the per-second check plus a Redis round trip). */
const AHEAD_MS = 2_000;

export interface Reservation {
  granted: number;
  /** The counters after the reservation (ms this month). */
  keyUsed: number;
  tenantUsed: number;
  /** The creator chain's counters after it, in the order of `Limits.chain`. */
  chainUsed: number[];
}

/** A creator's session minutes (ms) that the key's sessions count against too. */
export interface ChainLimit {
  keyId: string;
  ms: number;
}

/** Where session time is counted: Redis for a fleet, memory for the embedded store. */
export interface TimeBank {
  /**
   * Up to `wantMs` for the key, its creator chain and its tenant at once: no more than any of them has left (a
   * limit of null is none).
   */
  reserve(tenantId: string, keyId: string, wantMs: number, keyLimitMs: number | null, tenantLimitMs: number | null, chain: readonly ChainLimit[], month: string, expireAt: number): Promise<Reservation>;
  refund(tenantId: string, keyIds: readonly string[], ms: number, month: string): Promise<void>;
}

// KEYS: key counter, tenant counter, each creator's counter. ARGV: want, expireAtMs, then a limit per key (-1 = none).
const reserveLua = `
local grant = tonumber(ARGV[1])
local used = {}
for i = 1, #KEYS do
  used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  local limit = tonumber(ARGV[i + 2])
  if limit >= 0 and limit - used[i] < grant then grant = limit - used[i] end
end
if grant > 0 then
  for i = 1, #KEYS do
    used[i] = redis.call('INCRBY', KEYS[i], grant)
    redis.call('PEXPIREAT', KEYS[i], ARGV[2])
  end
else
  grant = 0
end
table.insert(used, 1, grant)
return used`;

// KEYS: the counters reserved from. ARGV: ms. Never below zero (a counter may have expired meanwhile).
const refundLua = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('DECRBY', KEYS[i], ARGV[1]) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
end
return 0`;

type Scripted = RedisClient & {
  kgSessionReserve(numKeys: number, ...args: Array<string | number>): Promise<number[]>;
  kgSessionRefund(numKeys: number, ...args: Array<string | number>): Promise<number>;
};

/** Every counter (key, tenant, creators) carries the tenant's hash tag, so the scripts run on one Cluster slot. */
const counterKey = (prefix: string, tenantId: string, month: string, who: string) => `${prefix}{${tenantId}}:q:${month}:s:${who}`;

export class RedisTimeBank implements TimeBank {
  readonly #r: Scripted;
  readonly #p: string;

  constructor(redis: RedisClient, prefix: string) {
    // The number of keys varies with the creator chain; all carry the tenant's hash tag.
    redis.defineCommand('kgSessionReserve', { lua: reserveLua });
    redis.defineCommand('kgSessionRefund', { lua: refundLua });
    this.#r = redis as Scripted;
    this.#p = prefix;
  }

  async reserve(tenantId: string, keyId: string, wantMs: number, keyLimitMs: number | null, tenantLimitMs: number | null, chain: readonly ChainLimit[], month: string, expireAt: number): Promise<Reservation> {
    const keys = [keyId, '*', ...chain.map((c) => c.keyId)].map((who) => counterKey(this.#p, tenantId, month, who));
    const limits = [keyLimitMs ?? -1, tenantLimitMs ?? -1, ...chain.map((c) => c.ms)];
    const [granted, keyUsed, tenantUsed, ...chainUsed] = await this.#r.kgSessionReserve(keys.length, ...keys, Math.floor(wantMs), expireAt, ...limits);
    return { granted: granted!, keyUsed: keyUsed!, tenantUsed: tenantUsed!, chainUsed };
  }

  async refund(tenantId: string, keyIds: readonly string[], ms: number, month: string): Promise<void> {
    const keys = [...keyIds, '*'].map((who) => counterKey(this.#p, tenantId, month, who));
    await this.#r.kgSessionRefund(keys.length, ...keys, Math.floor(ms));
  }
}

/** The embedded store's equivalent: one process. */
export class MemoryTimeBank implements TimeBank {
  /** Bounded by count (a size of one per entry: lru-cache preallocates for `max`). */
  readonly #used = new LRUCache<string, number>({ maxSize: 100_000, sizeCalculation: () => 1 });

  async reserve(tenantId: string, keyId: string, wantMs: number, keyLimitMs: number | null, tenantLimitMs: number | null, chain: readonly ChainLimit[], month: string): Promise<Reservation> {
    // As the Redis script: the key, the tenant and each creator, all or none.
    const ids = [keyId, '*', ...chain.map((c) => c.keyId)].map((who) => counterKey('', tenantId, month, who));
    const limits = [keyLimitMs, tenantLimitMs, ...chain.map((c) => c.ms)];
    const used = ids.map((id) => this.#used.get(id) ?? 0);
    let granted = Math.floor(wantMs);
    limits.forEach((limit, i) => {
      if (limit !== null) granted = Math.min(granted, limit - used[i]!);
    });
    if (granted <= 0) granted = 0;
    else ids.forEach((id, i) => this.#used.set(id, (used[i]! += granted)));
    const [keyUsed, tenantUsed, ...chainUsed] = used;
    return { granted, keyUsed: keyUsed!, tenantUsed: tenantUsed!, chainUsed };
  }

  async refund(tenantId: string, keyIds: readonly string[], ms: number, month: string): Promise<void> {
    for (const id of [...keyIds, '*'].map((who) => counterKey('', tenantId, month, who))) {
      const have = this.#used.get(id);
      if (have !== undefined) this.#used.set(id, Math.max(0, have - Math.floor(ms)));
    }
  }
}

export interface SessionQuotaOptions {
  bank: TimeBank;
  plans: Config['plans'];
  warningSeconds: number;
  graceSeconds: number;
  onThreshold?: (event: QuotaThreshold) => void;
  logger: Logger;
  now?: () => number;
}

/** An upgrade refused because the key's or tenant's minutes are used up this month. */
export interface QuotaRefusal {
  refused: true;
  scope: 'key' | 'tenant';
  retryAfterSeconds: number;
}

interface Limits {
  keyMs: number | null;
  tenantMs: number | null;
  /** The creator chain's minutes (keys/types.ts, QuotaOwner): a key's sessions count against each. */
  chain: ChainLimit[];
}

const MINUTE_MS = 60_000;
const sameChain = (a: readonly ChainLimit[] = [], b: readonly ChainLimit[] = []) => a.length === b.length && a.every((c, i) => c.keyId === b[i]!.keyId && c.ms === b[i]!.ms);
const minutes = (ms: number) => Math.round((ms / MINUTE_MS) * 1000) / 1000;

export class SessionQuota {
  readonly bank: TimeBank;
  readonly #plans: Config['plans'];
  readonly warningMs: number;
  readonly graceMs: number;
  readonly aheadMs: number;
  readonly #onThreshold: (event: QuotaThreshold) => void;
  readonly logger: Logger;
  readonly now: () => number;

  constructor(opts: SessionQuotaOptions) {
    this.bank = opts.bank;
    this.#plans = opts.plans;
    this.warningMs = opts.warningSeconds * 1000;
    this.graceMs = opts.graceSeconds * 1000;
    this.aheadMs = this.warningMs + AHEAD_MS;
    this.#onThreshold = opts.onThreshold ?? (() => {});
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
  }

  /** The key's and its plan's session minutes in ms; null when neither caps them (no Redis call at all then). */
  limitsOf({ key, tenant }: Identity): Limits | null {
    const own = key.policy.quota?.sessionMinutesPerMonth ?? null;
    const plan = this.#plans[tenant.plan]?.sessionMinutesPerMonth?.max ?? null;
    const chain: ChainLimit[] = [];
    for (const owner of key.policy.quotaChain ?? []) if (owner.sessionMinutesPerMonth !== null) chain.push({ keyId: owner.keyId, ms: owner.sessionMinutesPerMonth * MINUTE_MS });
    if (own === null && plan === null && chain.length === 0) return null;
    return { keyMs: own === null ? null : own * MINUTE_MS, tenantMs: plan === null ? null : plan * MINUTE_MS, chain };
  }

  /**
   * The upgrade's first reservation: a meter for the session, null when no quota applies, or a refusal when
   * nothing is left. Throws when the store cannot answer (the upgrade gets 503).
   */
  async open(identity: Identity, sessionId: string): Promise<SessionMeter | QuotaRefusal | null> {
    const limits = this.limitsOf(identity);
    if (!limits) return null;
    const meter = new SessionMeter(this, identity, sessionId, limits);
    const now = this.now();
    const r = await meter.reserve(now, SLICE_MS + this.aheadMs);
    if (r.granted > 0) return meter;
    return { refused: true, scope: meter.exhausted(r), retryAfterSeconds: Math.max(1, Math.ceil((monthEnd(now) - now) / 1000)) };
  }

  /**
   * A live session's key changed: when its minutes are capped differently now (a cap set, raised or lowered), a
   * new meter starts under the new limits and the old one gives its unused time back; a refusal when nothing is
   * left (the session closes, 1008 quota_exceeded). 'same' when the limits did not change. Throws when the store
   * cannot answer, leaving the running meter as it was.
   */
  async remeter(identity: Identity, sessionId: string, current: SessionMeter | null): Promise<SessionMeter | QuotaRefusal | null | 'same'> {
    const limits = this.limitsOf(identity);
    const was = current?.limits ?? null;
    if (limits?.keyMs === was?.keyMs && limits?.tenantMs === was?.tenantMs && sameChain(limits?.chain, was?.chain)) return 'same';
    const next = await this.open(identity, sessionId);
    current?.close(this.now());
    return next;
  }

  /** Announces the thresholds a reservation crossed (quota-events.ts). */
  announce(tenantId: string, keyId: string | null, before: number, after: number, limitMs: number): void {
    for (const threshold of crossed(before, after, limitMs)) {
      const at = this.now();
      this.#onThreshold({
        type: 'quota.threshold', tenantId, keyId, quota: 'sessionMinutesPerMonth', threshold,
        limit: minutes(limitMs), used: minutes(Math.min(after, limitMs)), period: monthOf(at), at: new Date(at).toISOString(),
      });
    }
  }
}

/** One live session's share of its key's and tenant's minutes. */
export class SessionMeter {
  readonly #q: SessionQuota;
  readonly #tenantId: string;
  readonly #keyId: string;
  readonly #sessionId: string;
  readonly #limits: Limits;
  /** Time reserved runs out then (ms since epoch). */
  #paidUntil = 0;
  /** The month of the latest reservation, and how much was reserved in it (what a refund may give back). */
  #month = '';
  #monthReserved = 0;
  /** When the quota ends for this session (a reservation came back short); null while it does not. */
  #endsAt: number | null = null;
  #scope: 'key' | 'tenant' = 'key';
  #warned = false;
  #pending = false;
  #closed = false;

  constructor(q: SessionQuota, identity: Identity, sessionId: string, limits: Limits) {
    this.#q = q;
    this.#tenantId = identity.tenant.id;
    this.#keyId = identity.key.id;
    this.#sessionId = sessionId;
    this.#limits = limits;
  }

  /** The key's and tenant's minutes in ms this meter was opened under. */
  get limits(): Limits {
    return this.#limits;
  }

  /** Which counter a short reservation ran into (a creator's minutes are a key's). */
  exhausted(r: Reservation): 'key' | 'tenant' {
    if (this.#limits.keyMs !== null && r.keyUsed >= this.#limits.keyMs) return 'key';
    return this.#limits.chain.some((c, i) => r.chainUsed[i]! >= c.ms) ? 'key' : 'tenant';
  }

  /** Reserves up to `wantMs` more (the first reservation starts the clock at `now`). */
  async reserve(now: number, wantMs: number): Promise<Reservation> {
    const month = monthOf(now);
    const { keyMs, tenantMs } = this.#limits;
    const r = await this.#q.bank.reserve(this.#tenantId, this.#keyId, wantMs, keyMs, tenantMs, this.#limits.chain, month, monthEnd(now) + COUNTER_SLACK_MS);
    // The clock starts at the first reservation; time a session ran past its reservation because Redis could
    // not be asked (an outage) is not charged afterwards, as requests admitted during one are not.
    this.#paidUntil = Math.max(this.#paidUntil, now);
    if (month !== this.#month) [this.#month, this.#monthReserved] = [month, 0];
    this.#monthReserved += r.granted;
    this.#paidUntil += r.granted;
    if (keyMs !== null) this.#q.announce(this.#tenantId, this.#keyId, r.keyUsed - r.granted, r.keyUsed, keyMs);
    if (tenantMs !== null) this.#q.announce(this.#tenantId, null, r.tenantUsed - r.granted, r.tenantUsed, tenantMs);
    this.#limits.chain.forEach((c, i) => this.#q.announce(this.#tenantId, c.keyId, r.chainUsed[i]! - r.granted, r.chainUsed[i]!, c.ms));
    if (r.granted < Math.floor(wantMs)) {
      this.#endsAt = this.#paidUntil;
      this.#scope = this.exhausted(r);
    }
    // The session ended while this reservation was under way: it is not needed.
    if (this.#closed && r.granted > 0) void this.#refund(r.granted);
    return r;
  }

  /** Called every second while the session lives; true when it must close now (1008 quota_exceeded). */
  tick(now: number): boolean {
    if (this.#endsAt === null) {
      if (!this.#pending && this.#paidUntil - now <= this.#q.aheadMs) this.#next(now);
      return false;
    }
    if (now >= this.#endsAt + this.#q.graceMs) return true;
    if (!this.#warned && now >= this.#endsAt - this.#q.warningMs) {
      this.#warned = true;
      this.#q.logger.warn(
        { sessionId: this.#sessionId, tenantId: this.#tenantId, keyId: this.#keyId, quota: 'sessionMinutesPerMonth', scope: this.#scope, closesAt: new Date(this.#endsAt + this.#q.graceMs).toISOString() },
        'session quota ending',
      );
    }
    return false;
  }

  #next(now: number): void {
    this.#pending = true;
    this.reserve(now, SLICE_MS).then(
      () => (this.#pending = false),
      () => (this.#pending = false), // Redis unreachable: the session goes on, and the next tick asks again
    );
  }

  /** The session ended: what it reserved and did not use is given back (of the latest month's reservations). */
  close(now: number): void {
    if (this.#closed) return;
    this.#closed = true;
    const unused = Math.min(this.#monthReserved, Math.max(0, this.#paidUntil - now));
    if (unused > 0) void this.#refund(unused);
  }

  async #refund(ms: number): Promise<void> {
    this.#monthReserved -= ms;
    await this.#q.bank.refund(this.#tenantId, [this.#keyId, ...this.#limits.chain.map((c) => c.keyId)], ms, this.#month).catch(() => {});
  }
}
